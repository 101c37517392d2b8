"""One comparison setting over seeds: fine-tune the baseline, attack with the suite, gate.

Every setting gets the same baseline, judge, GAN prior, private data, attack suite and attack
seed per compare seed, so rows differ only by the defense (paired seeds). Training seeds are
shifted per compare seed (``config.reseed``); the attack seed equals the compare seed.
"""

from __future__ import annotations

import copy
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from pipeline.attacks import AttackResult
from pipeline.checkpoint import save_checkpoint
from pipeline.defenses import DefenseData, DefenseKnowledge, HardenSection, get_defense
from pipeline.gate import GateSection, evaluate_gate, worst_case
from pipeline.io import atomic_write_json, atomic_write_with, sha256_file
from pipeline.metrics import mean_std
from pipeline.models import Classifier
from pipeline.prior import ImagePrior
from pipeline.stage_utils import utility_report
from pipeline.suite import AttackSection, PrivateReference, run_suite
from pipeline.target_gan import TargetGANSection, train_target_gans
from pipeline.tracking import StageRun

ATTACK_METRICS = ("acc1", "knn_distance", "train_closer_fraction", "psnr", "ssim")
GATE_RECORD_KEYS = (
    "verdict", "verdict_reason", "failed_checks", "undecided_checks", "checks", "hardened_worst_case_leakage",
    "baseline_worst_case_leakage", "checkpoint_sha256",
)  # fmt: skip
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
    target_gan: TargetGANSection  # each attacked model gets its own PLG-MI / KED-MI GANs


@dataclass
class SeedOutcome:
    record: dict[str, Any]  # what goes into the setting's report
    model: Classifier
    attack_results: dict[str, AttackResult]


@dataclass
class TrainedModel:
    """A setting's model for one seed, with what its training reported and what the defense declares."""

    model: Classifier
    defense_report: dict[str, Any]
    seconds: float
    checkpoint_meta: dict[str, Any] = field(default_factory=dict)
    knowledge: DefenseKnowledge = field(default_factory=DefenseKnowledge)  # for the adaptive attacks


def harden(inputs: CompareInputs, section: HardenSection | None) -> TrainedModel:
    """Apply the setting's defense to a copy of the baseline (None = the undefended baseline)."""
    start = time.perf_counter()
    if section is None:
        model, report, knowledge = copy.deepcopy(inputs.baseline), {"defense": "none"}, DefenseKnowledge()
    else:
        spec, settings = get_defense(section.defense), section.defense_settings()
        result = spec.apply(inputs.baseline, settings, inputs.data)
        model, report, knowledge = result.model, {"defense": spec.name, **result.report}, settings.attacker_knowledge()
    meta = {"harden": section.model_dump() if section else None}
    return TrainedModel(model, report, time.perf_counter() - start, meta, knowledge)


def attack_trained(inputs: CompareInputs, trained: TrainedModel, attack: AttackSection, seed: int) -> SeedOutcome:
    """Measure a trained model's utility and attack it with the suite (one attack seed)."""
    model = trained.model
    utility = utility_report(model, inputs.data.train, inputs.data.test)
    knowledge = trained.knowledge
    start = time.perf_counter()
    target_gans = train_target_gans(
        model, inputs.public_images, inputs.target_gan, inputs.prior, attack.prior_kinds(), progress=False
    )
    priors = {"generic": inputs.prior, **target_gans}
    attacks, results = run_suite(model, inputs.judge, priors, inputs.public_images, inputs.reference, attack, knowledge)
    attack_seconds = time.perf_counter() - start
    drop = inputs.baseline_natural_accuracy - utility["natural_accuracy"]
    deciding, worst = worst_case(attacks)
    record: dict[str, Any] = {
        "seed": seed,
        "natural_accuracy": utility["natural_accuracy"],
        "natural_accuracy_drop": drop,
        "train_mean_true_class_prob": utility["train_mean_true_class_prob"],
        "defense_report": trained.defense_report,
        "attacker_knowledge": knowledge.attack_params(),
        "worst_case_acc1": worst["acc1"]["mean"],
        "deciding_attack": deciding,
        "attacks": attacks,
        "seconds": {"train": trained.seconds, "attack": attack_seconds},
    }
    return SeedOutcome(record, model, results)


def evaluate_seed(
    inputs: CompareInputs, section: HardenSection | None, attack: AttackSection, seed: int
) -> SeedOutcome:
    """Harden a copy of the baseline and attack it with the suite (one attack seed)."""
    return attack_trained(inputs, harden(inputs, section), attack, seed)


def gate_record(
    record: dict[str, Any], baseline_accuracy: float, gate: GateSection, baseline_attacks: dict[str, Any],
    floor_attacks: dict[str, Any], checkpoint_sha256: str,
) -> dict[str, Any]:  # fmt: skip
    """The release gate's verdict on one seed, against the baseline attacked with the same seed, both
    measured over the same floor (the suite against a model that knows nothing of the private classes)."""
    harden_report = {"natural_accuracy": record["natural_accuracy"], "baseline_natural_accuracy": baseline_accuracy}
    verdict = evaluate_gate(gate, baseline_attacks, record["attacks"], floor_attacks, harden_report, checkpoint_sha256)
    return {k: verdict[k] for k in GATE_RECORD_KEYS}


def summarise(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean ± std over seeds of utility, worst case and every attack's judge Acc@1; with gate records, the
    verdicts and (where recorded) the hardened worst-case leakage over the floor."""
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
        if all("hardened_worst_case_leakage" in r["gate"] for r in records):
            leakage = [r["gate"]["hardened_worst_case_leakage"]["value"] for r in records]
            summary["worst_case_leakage"] = mean_std(leakage)
    summary["seconds"] = {phase: sum(r["seconds"][phase] for r in records) for phase in ("train", "attack")}
    return summary


def save_reconstructions(path: Path, results: dict[str, AttackResult]) -> None:
    """Every attack's reconstructions, as uint8, for the side-by-side grids."""
    payload = {
        name: {"images": (r.images.clamp(0, 1) * 255).round().to(torch.uint8), "labels": r.labels}
        for name, r in results.items()
    }
    atomic_write_with(path, lambda f: torch.save(payload, f))


@dataclass(frozen=True)
class SeedLoop:
    """What a comparison row does with every seed, whatever trains its model.

    ``out`` receives one checkpoint per seed and the first seed's reconstructions; each seed is
    gated against the baseline and the floor attacked with that seed (``baseline_attacks`` and
    ``floor_attacks``; None = not gated: the baseline and floor rows themselves).
    """

    inputs: CompareInputs
    attack_for_seed: Callable[[int], AttackSection]
    gate: GateSection
    baseline_attacks: dict[int, dict[str, Any]] | None
    out: Path
    floor_attacks: dict[int, dict[str, Any]] | None = None

    def run(self, seeds: list[int], train: Callable[[int], TrainedModel], label: str, run: StageRun) -> list[dict]:
        records = []
        for seed in tqdm(seeds, desc=f"compare {label}", unit="seed"):
            trained = train(seed)
            outcome = attack_trained(self.inputs, trained, self.attack_for_seed(seed), seed)
            checkpoint = self.out / f"seed{seed}.pt"
            save_checkpoint(checkpoint, trained.model, trained.checkpoint_meta)
            if self.baseline_attacks is not None:
                for row, runs in (("baseline", self.baseline_attacks), ("floor", self.floor_attacks or {})):
                    if seed not in runs:
                        raise SystemExit(f"the {row}'s compare report has no run for seed {seed}; re-run the {row}")
                outcome.record["gate"] = gate_record(
                    outcome.record, self.inputs.baseline_natural_accuracy, self.gate, self.baseline_attacks[seed],
                    self.floor_attacks[seed], sha256_file(checkpoint),
                )  # fmt: skip
            records.append(outcome.record)
            if len(records) == 1:  # the first seed's reconstructions feed the side-by-side grids
                save_reconstructions(self.out / "reconstructions.pt", outcome.attack_results)
            run.log_metrics(
                {m: outcome.record[m] for m in ("natural_accuracy", "worst_case_acc1")}, prefix=f"seed{seed}."
            )
        return records


def write_report(path: str | Path, report: dict[str, Any], records: list[dict], run: StageRun) -> dict[str, Any]:
    """Add the seeds and their summary to ``report``, write it atomically, log it; return the summary."""
    report.update(seeds=records, summary=summarise(records))
    atomic_write_json(path, report)
    summary = report["summary"]
    run.log_metrics({k: v["mean"] for k, v in summary.items() if isinstance(v, dict) and "mean" in v})
    run.log_artifact(str(path))
    print(
        f"compare {report['setting']}: natural accuracy {summary['natural_accuracy']['mean']:.3f} ± "
        f"{summary['natural_accuracy']['std']:.3f}, worst-case Acc@1 {summary['worst_case_acc1']['mean']:.2f} ± "
        f"{summary['worst_case_acc1']['std']:.2f}, gate {summary.get('gate_verdicts', 'n/a')}"
    )
    return summary
