"""A tiny hardened-looking checkpoint, an approved gate report and one shared export for tests.

The ONNX export takes seconds (the dynamo exporter), so ``shared_release`` exports once per test
session and both tests/export and tests/serve reuse it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from pipeline.checkpoint import save_checkpoint
from pipeline.export import ExportSection, run_export
from pipeline.gate import GateSection, evaluate_gate
from pipeline.io import sha256_file
from pipeline.models import Classifier, HeadConfig, ModelConfig, create_model

TINY = ModelConfig(arch="convnet", num_classes=4, in_channels=1, image_size=12, width=8,
                   head=HeadConfig(kind="low_rank", rank=2))  # fmt: skip
MAX_BATCH = 16


def tiny_model(seed: int = 0) -> Classifier:
    """Untrained, but with non-trivial BatchNorm statistics so folding them is actually tested."""
    torch.manual_seed(seed)
    model = create_model(TINY)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(32, 1, 12, 12) * 2)
    return model.eval()


def write_checkpoint(path: Path, seed: int = 0) -> Path:
    params = {"harden": {"defense": "calor", "calor": {"low_rank": {"rank": 2}}}}
    save_checkpoint(path, tiny_model(seed), params, extra={"defense": "calor"})
    return path


GATE_THRESHOLDS = GateSection(min_baseline_leakage=0.2, max_leakage_ratio=0.5, max_attack_acc1=0.3,
                              max_accuracy_drop=0.1, min_knn_distance=0.5, confidence=0.95)  # fmt: skip
_N = 1000  # reconstructions per attack: intervals narrow enough for every check to decide


def _attacks(correct: dict[str, int]) -> dict[str, Any]:
    return {"attacks": {name: {"acc1": {"mean": k / _N}, "acc1_pooled": {"correct": k, "n": _N},
                               "knn_distance": {"mean": 1.0}, "loss": "ce"}
                        for name, k in correct.items()}}  # fmt: skip


def gate_report(
    checkpoint_sha256: str, verdict: str = "approved", *, natural_accuracy: float = 0.85, worst_case_acc1: float = 0.1
) -> dict[str, Any]:
    """A report written by the real gate (``pipeline.gate.evaluate_gate``) on synthetic attack counts.

    ``approved``: the hardened model leaks nothing over the floor; ``rejected``: it leaks almost as
    much as the baseline; ``inconclusive``: the baseline itself does not leak.
    """
    baseline = {"plg_mi": 900, "gmi": 700} if verdict != "inconclusive" else {"plg_mi": 120, "gmi": 110}
    hardened_acc1 = worst_case_acc1 if verdict != "rejected" else 0.8
    hardened = {"plg_mi": round(hardened_acc1 * _N), "gmi": round(hardened_acc1 * _N / 2)}
    report = evaluate_gate(
        GATE_THRESHOLDS, _attacks(baseline), _attacks(hardened), _attacks({"plg_mi": 100, "gmi": 100}),
        {"natural_accuracy": natural_accuracy, "baseline_natural_accuracy": 0.9}, checkpoint_sha256,
    )  # fmt: skip
    if report["verdict"] != verdict:
        raise AssertionError(f"fixture asked for a {verdict!r} gate, the gate says {report['verdict']!r}")
    return report


def write_gate(
    path: Path, checkpoint: Path, verdict: str = "approved", *, natural_accuracy: float = 0.85,
    worst_case_acc1: float = 0.1, **overrides: Any,
) -> Path:  # fmt: skip
    """The gate's report for ``checkpoint``; ``overrides`` then replace top-level keys (hand edits)."""
    report = gate_report(sha256_file(checkpoint), verdict, natural_accuracy=natural_accuracy,
                         worst_case_acc1=worst_case_acc1)  # fmt: skip
    report.update(overrides)
    path.write_text(json.dumps(report))
    return path


def write_private_test(path: Path, n: int = 48, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 1, 12, 12), dtype=np.uint8)
    np.savez(path, images=images, labels=rng.integers(0, 4, n).astype(np.int64))
    return path


def write_params(path: Path, **sections: Any) -> Path:
    path.write_text(yaml.safe_dump(sections))
    return path


def export_config(**overrides: Any) -> ExportSection:
    return ExportSection(max_batch=MAX_BATCH, **overrides)


@dataclass(frozen=True)
class Release:
    root: Path
    checkpoint: Path
    gate: Path
    data: Path
    out: Path
    report: Path
    result: dict[str, Any]

    @property
    def onnx(self) -> Path:
        return self.out / "model.onnx"


def make_release(root: Path, seed: int = 0) -> Release:
    root.mkdir(parents=True, exist_ok=True)
    checkpoint = write_checkpoint(root / "model.pt", seed)
    gate = write_gate(root / "gate.json", checkpoint)
    data = write_private_test(root / "private_test.npz")
    out, report = root / "export", root / "reports" / "export.json"
    result = run_export(export_config(), checkpoint=checkpoint, gate=gate, out_dir=out, report=report, data=data)
    return Release(root, checkpoint, gate, data, out, report, result)


_CACHE: dict[int, Release] = {}


def shared_release(tmp_path_factory: Any) -> Release:
    """One export per session, whichever test directory asks first."""
    key = id(tmp_path_factory)
    if key not in _CACHE:
        _CACHE[key] = make_release(tmp_path_factory.mktemp("release"))
    return _CACHE[key]
