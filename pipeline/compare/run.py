"""One comparison setting over seeds: fine-tune the baseline, attack with the suite, gate.

Every setting gets the same baseline, judge, GAN prior, private data, attack suite and attack
seed per compare seed, so rows differ only by the defense (paired seeds). Training seeds are
shifted per compare seed (``config.reseed``); the attack seed equals the compare seed.
"""

from __future__ import annotations

import copy
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import torch
from tqdm.auto import tqdm

from pipeline.attacks import AttackResult
from pipeline.config import HardenSection
from pipeline.defenses import DefenseData, get_defense
from pipeline.gate import GateSection, evaluate_gate, worst_case
from pipeline.metrics import mean_std
from pipeline.models import Classifier
from pipeline.prior import ImagePrior
from pipeline.stage_utils import utility_report
from pipeline.suite import AttackSection, PrivateReference, run_suite

ATTACK_METRICS = ("acc1", "knn_distance", "train_closer_fraction", "psnr", "ssim")
SUMMARY_METRICS = ("natural_accuracy", "natural_accuracy_drop", "train_mean_true_class_prob", "worst_case_acc1")


@dataclass(frozen=True)
class CompareInputs:
    """What every setting shares."""

    baseline: Classifier
    baseline_natural_accuracy: float
    judge: Classifier
    prior: ImagePrior
    public_images: torch.Tensor
    data: DefenseData
    reference: PrivateReference


@dataclass
class SeedOutcome:
    record: dict[str, Any]  # what goes into the setting's report
    model: Classifier
    attack_results: dict[str, AttackResult]


def harden(inputs: CompareInputs, section: HardenSection | None) -> tuple[Classifier, dict[str, Any]]:
    """Apply the setting's defense to a copy of the baseline (None = the undefended baseline)."""
    if section is None:
        return copy.deepcopy(inputs.baseline), {"defense": "none"}
    spec = get_defense(section.defense)
    result = spec.apply(inputs.baseline, section.defense_settings(), inputs.data)
    return result.model, {"defense": spec.name, **result.report}


def attacker_knowledge(defense_report: dict[str, Any]) -> dict[str, Any]:
    """Kerckhoffs: the adaptive attacker knows the defense's published target confidence, if any."""
    return {k: defense_report[k] for k in ("target_confidence",) if k in defense_report}


def evaluate_seed(
    inputs: CompareInputs, section: HardenSection | None, attack: AttackSection, seed: int
) -> SeedOutcome:
    """Harden a copy of the baseline and attack it with the suite (one attack seed)."""
    start = time.perf_counter()
    model, defense_report = harden(inputs, section)
    train_seconds = time.perf_counter() - start
    utility = utility_report(model, inputs.data.train, inputs.data.test)
    knowledge = attacker_knowledge(defense_report)
    start = time.perf_counter()
    attacks, results = run_suite(
        model, inputs.judge, inputs.prior, inputs.public_images, inputs.reference, attack, knowledge
    )
    attack_seconds = time.perf_counter() - start
    drop = inputs.baseline_natural_accuracy - utility["natural_accuracy"]
    deciding, worst = worst_case(attacks)
    record: dict[str, Any] = {
        "seed": seed,
        "natural_accuracy": utility["natural_accuracy"],
        "natural_accuracy_drop": drop,
        "train_mean_true_class_prob": utility["train_mean_true_class_prob"],
        "defense_report": defense_report,
        "attacker_knowledge": knowledge,
        "worst_case_acc1": worst["acc1"]["mean"],
        "deciding_attack": deciding,
        "attacks": attacks,
        "seconds": {"train": train_seconds, "attack": attack_seconds},
    }
    return SeedOutcome(record, model, results)


def gate_record(
    record: dict[str, Any], baseline_accuracy: float, gate: GateSection, baseline_attacks: dict[str, Any],
    checkpoint_sha256: str,
) -> dict[str, Any]:  # fmt: skip
    """The release gate's verdict on one seed, against the baseline attacked with the same seed."""
    harden_report = {"natural_accuracy": record["natural_accuracy"], "baseline_natural_accuracy": baseline_accuracy}
    verdict = evaluate_gate(gate, baseline_attacks, record["attacks"], harden_report, checkpoint_sha256)
    return {k: verdict[k] for k in ("verdict", "failed_checks", "checks", "checkpoint_sha256")}


def summarise(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean ± std over seeds of utility, worst case and every attack's judge Acc@1."""
    attack_names = list(records[0]["attacks"]["attacks"])
    summary: dict[str, Any] = {m: mean_std([r[m] for r in records]) for m in SUMMARY_METRICS}
    summary["attacks"] = {
        name: {
            metric: mean_std([r["attacks"]["attacks"][name][metric]["mean"] for r in records])
            for metric in ATTACK_METRICS
            if all(metric in r["attacks"]["attacks"][name] for r in records)
        }
        for name in attack_names
    }
    summary["deciding_attacks"] = dict(Counter(r["deciding_attack"] for r in records))
    summary["min_knn_distance"] = mean_std(
        [min(a["knn_distance"]["mean"] for a in r["attacks"]["attacks"].values()) for r in records]
    )
    if all("gate" in r for r in records):
        summary["gate_verdicts"] = dict(Counter(r["gate"]["verdict"] for r in records))
    summary["seconds"] = {phase: sum(r["seconds"][phase] for r in records) for phase in ("train", "attack")}
    return summary


def progress(seeds: list[int], label: str):
    return tqdm(seeds, desc=f"compare {label}", unit="seed")
