"""Parity between two runtimes of the same model: elementwise on random batches, top-1 on real data.

Random inputs at several batch sizes (1, a typical odd size, the max) catch shape and batching
bugs; top-1 agreement on the private test split catches what a tolerance cannot (an fp16 engine
may differ by 1e-2 in logits yet must still pick the same class).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.io import load_npz

Runner = Callable[[np.ndarray], np.ndarray]  # float32 (B, C, H, W) -> float32 (B, classes)


@dataclass
class ParityReport:
    atol: float
    rtol: float
    min_top1_agreement: float
    batches: list[dict[str, Any]] = field(default_factory=list)
    top1_agreement: float | None = None
    n_images: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


def load_private_test(path: str | os.PathLike) -> np.ndarray:
    """Private test images as float32 in [0, 1] (the model's input contract).

    ``path`` is the prepared split directory (the part is checked against its manifest) or a
    single ``.npz`` with a uint8 ``images`` array (N, C, H, W).
    """
    if Path(path).is_dir():
        from pipeline.data import load_split_part

        images, _ = load_split_part(path, "private_test")
    else:
        images = load_npz(path, ("images",))["images"]
    if images.dtype != np.uint8 or images.ndim != 4:
        raise ValueError(f"{path}: images must be uint8 (N, C, H, W), got {images.dtype} {images.shape}")
    return images.astype(np.float32) / 255.0


def _batched(run: Runner, images: np.ndarray, batch: int) -> np.ndarray:
    return np.concatenate([run(images[i : i + batch]) for i in range(0, len(images), batch)])


def compare(
    reference: Runner,
    candidate: Runner,
    *,
    input_dims: tuple[int, ...],
    batch_sizes: list[int],
    atol: float,
    rtol: float,
    min_top1_agreement: float,
    images: np.ndarray | None = None,
    max_batch: int = 64,
    seed: int = 0,
) -> ParityReport:
    """Run both on the same inputs; every failed check is collected in ``problems``."""
    report = ParityReport(atol=atol, rtol=rtol, min_top1_agreement=min_top1_agreement)
    rng = np.random.default_rng(seed)
    for batch in sorted(set(batch_sizes)):
        x = rng.random((batch, *input_dims), dtype=np.float32)
        ref, got = reference(x), candidate(x)
        if ref.shape != got.shape:
            report.batches.append({"batch_size": batch, "passed": False, "shape": [ref.shape, got.shape]})
            report.problems.append(f"batch {batch}: output shape {got.shape} != reference {ref.shape}")
            continue
        diff = float(np.max(np.abs(ref - got)))
        ok = bool(np.allclose(got, ref, atol=atol, rtol=rtol))
        report.batches.append({"batch_size": batch, "max_abs_diff": diff, "passed": ok})
        if not ok:
            report.problems.append(f"batch {batch}: max |diff| {diff:.3g} exceeds atol {atol} / rtol {rtol}")
    if images is not None and len(images):
        ref_top1 = _batched(reference, images, max_batch).argmax(1)
        got_top1 = _batched(candidate, images, max_batch).argmax(1)
        report.n_images = len(images)
        report.top1_agreement = float(np.mean(ref_top1 == got_top1))
        if report.top1_agreement < min_top1_agreement:
            report.problems.append(
                f"top-1 agreement {report.top1_agreement:.4f} on {len(images)} images "
                f"< min_top1_agreement {min_top1_agreement}"
            )
    return report
