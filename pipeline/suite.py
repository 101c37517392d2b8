"""Run the attack suite against one model and judge every reconstruction independently.

For each suite entry and seed: run the attack on all private classes at once, then score the
kept reconstructions with the *judge* (never the target): Acc@1/@5, KNN distance to the private
training set, PSNR/SSIM to the nearest same-class private image, and whether reconstructions sit
closer to private training images than to held-out test images. Besides the per-seed mean ± std,
each attack reports its judged-correct count pooled over seeds (``acc1_pooled``), which the gate
turns into confidence intervals.

Attacks that need a GAN get the one of their ``prior_kind`` from ``priors``: the generic public
prior, or a GAN trained against this very target (PLG-MI, KED-MI). The floor, the same suite
against a model that knows nothing of the private classes, is attacked like any other model
(``floor_model``) by its own stage.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import torch
from pydantic import Field, field_validator, model_validator
from tqdm.auto import tqdm

from pipeline.attacks import Attack, AttackBudget, AttackResult, LabelOnlyTarget, WhiteBoxTarget, create_attack
from pipeline.attacks.base import Access
from pipeline.attacks.registry import ATTACKS, param_type_problems
from pipeline.attacks.sharding import ClassShard
from pipeline.config import Section
from pipeline.data.parts import LabelledImages
from pipeline.defenses.registry import DefenseKnowledge
from pipeline.distributed import gather_to_primary, is_primary, shard_items
from pipeline.metrics import attack_accuracy, judge_features, knn_distance_from_features, mean_std
from pipeline.metrics.features import closeness_from_features
from pipeline.metrics.similarity import nearest_neighbour_similarity
from pipeline.models import Classifier, create_model
from pipeline.seeding import seeded_rng

METRICS = ("acc1", "acc5", "knn_distance", "psnr", "ssim", "train_closer_fraction", "seconds")


class BudgetSection(Section):
    steps: int = Field(ge=1)
    restarts: int = Field(ge=1)
    samples_per_class: int = Field(ge=1)


class BudgetOverride(Section):
    """An entry's own budget: only the fields it sets replace the suite's (e.g. more steps for PLG-MI),
    so an overlay of ``attack.budget.restarts`` (the compare pipeline's) still reaches that entry."""

    steps: int | None = Field(None, ge=1)
    restarts: int | None = Field(None, ge=1)
    samples_per_class: int | None = Field(None, ge=1)

    def over(self, budget: BudgetSection) -> BudgetSection:
        return budget.model_copy(update=self.model_dump(exclude_none=True))


class SuiteEntry(Section):
    """One row of the suite: a registered attack, its parameters, and optionally its own budget fields.

    Validated when params load: the attack is built from its parameters, an adaptive one also with
    every parameter a defense may declare (``DefenseKnowledge``), so no bad entry waits mid-suite.
    """

    attack: str
    params: dict[str, Any] = Field(default_factory=dict)
    budget: BudgetOverride | None = None
    adapt_to_defense: bool = False  # pass what the defense declares an attacker knows (Kerckhoffs)

    @field_validator("attack")
    @classmethod
    def _registered(cls, name: str) -> str:
        if name not in ATTACKS:
            raise ValueError(f"unknown attack {name!r}; known: {ATTACKS.names()}")
        return name

    @model_validator(mode="after")
    def _params_have_the_attack_types(self) -> SuiteEntry:
        """As strict as the sections: ``params`` is free-form here, so check it against the attack's fields."""
        if self.attack in ATTACKS:  # an unknown attack is named by AttackSection, with the entry's key
            problems = param_type_problems(self.attack, self.params)
            if problems:
                raise ValueError("; ".join(f"params.{problem}" for problem in problems))
        return self

    @model_validator(mode="after")
    def _builds(self) -> SuiteEntry:
        knowledge = DefenseKnowledge.example() if self.adapt_to_defense else DefenseKnowledge()
        try:
            build_attack(self, knowledge)
        except (TypeError, ValueError) as err:
            adaptive = " (with what a defense may declare: adapt_to_defense is true)" if self.adapt_to_defense else ""
            raise ValueError(f"params{adaptive}: {err}") from None
        return self


class AttackSection(Section):
    seeds: list[int] = Field(min_length=1)
    classes: list[int] | Annotated[int, Field(ge=1)] | None = None  # None = every private class; N = the first N
    budget: BudgetSection
    suite: dict[str, SuiteEntry] = Field(min_length=1)
    grid_samples_per_class: int = Field(4, ge=1)
    # Under torchrun: each rank runs whole (attack, seed) runs ("runs": many small runs, exact), or every
    # rank runs every run on its block of the classes ("classes": few runs over hundreds of classes).
    shard: Literal["runs", "classes"] = "runs"

    @model_validator(mode="after")
    def _entry_budgets_run(self) -> AttackSection:
        """Every entry's merged budget is one the attacks accept (e.g. samples_per_class <= restarts)."""
        problems = []
        for name in self.suite:
            try:
                AttackBudget(**self.entry_budget(name).model_dump())
            except ValueError as err:
                problems.append(f"suite.{name}: {err}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def entry_budget(self, name: str) -> BudgetSection:
        """The budget suite entry ``name`` runs with: the suite's, with the fields the entry sets replaced."""
        entry = self.suite[name]
        return entry.budget.over(self.budget) if entry.budget else self.budget

    def attacked_classes(self, num_classes: int) -> list[int]:
        """The private classes the suite attacks (the face protocol attacks the first 300 of 1,000)."""
        if self.classes is None:
            return list(range(num_classes))
        if isinstance(self.classes, int):
            if self.classes > num_classes:
                raise ValueError(f"attack.classes: {self.classes} classes asked for, the target has {num_classes}")
            return list(range(self.classes))
        outside = sorted(set(self.classes) - set(range(num_classes)))
        if outside:
            raise ValueError(f"attack.classes: {outside} are not private classes of the target (0..{num_classes - 1})")
        return list(self.classes)

    def prior_kinds(self) -> set[str]:
        """The GAN kinds the suite's attacks need (``generic``, ``plgmi``, ``kedmi``)."""
        kinds = {ATTACKS.get(entry.attack).cls.prior_kind for entry in self.suite.values()}
        return {kind for kind in kinds if kind is not None}


@dataclass(frozen=True)
class PrivateReference:
    """Private data plus its judge features, computed once per stage rather than once per run."""

    train: LabelledImages
    test: LabelledImages
    train_features: torch.Tensor
    test_features: torch.Tensor

    @classmethod
    def build(cls, judge: Classifier, train: LabelledImages, test: LabelledImages) -> PrivateReference:
        return cls(train, test, judge_features(judge, train.images), judge_features(judge, test.images))


def score(result: AttackResult, judge: Classifier, reference: PrivateReference, seed: int) -> dict[str, float]:
    """Judge-based metrics of one attack run (the target's opinion is never a privacy metric)."""
    accuracy = attack_accuracy(judge, result.images, result.labels)
    n = len(result.labels)
    features = judge_features(judge, result.images)
    similarity = nearest_neighbour_similarity(
        result.images, result.labels, reference.train.images, reference.train.labels
    )
    return {
        "acc1": accuracy["acc@1"],
        "acc1_correct": round(accuracy["acc@1"] * n),
        "reconstructions": n,
        "acc5": accuracy.get("acc@5", float("nan")),
        "knn_distance": knn_distance_from_features(
            features, result.labels, reference.train_features, reference.train.labels
        ),
        "psnr": similarity["psnr"],
        "ssim": similarity["ssim"],
        "train_closer_fraction": closeness_from_features(
            features, result.labels, reference.train_features, reference.train.labels,
            reference.test_features, reference.test.labels, seed=seed,
        ),
        "seconds": result.seconds,
    }  # fmt: skip


def make_target(model: Classifier, attack_name: str) -> LabelOnlyTarget:
    """The weakest access the attack needs: label-only attacks never see logits or gradients."""
    needs_white_box = ATTACKS.get(attack_name).cls.requires is Access.WHITE_BOX
    return WhiteBoxTarget(model) if needs_white_box else LabelOnlyTarget(model)


def build_attack(entry: SuiteEntry, defense_knowledge: DefenseKnowledge) -> Attack:
    """The entry's attack; an adaptive entry also gets every parameter the defense declares."""
    known = defense_knowledge.attack_params() if entry.adapt_to_defense else {}
    return create_attack(entry.attack, **{**entry.params, **known})


def run_entry(
    entry: SuiteEntry, model: Classifier, classes: list[int], budget: BudgetSection, seed: int,
    priors: Mapping[str, Any], public_images: torch.Tensor, defense_knowledge: DefenseKnowledge,
    shard: ClassShard | None = None,
) -> AttackResult:  # fmt: skip
    attack = build_attack(entry, defense_knowledge)
    kind = type(attack).prior_kind
    if kind is not None and kind not in priors:
        raise ValueError(f"attack {entry.attack!r} needs a {kind!r} GAN, but only {sorted(priors)} were given")
    return attack.run(
        make_target(model, entry.attack), classes, AttackBudget(**budget.model_dump()), seed,
        generator=priors.get(kind) if kind else None, public_images=public_images, shard=shard,
    )  # fmt: skip


def floor_model(model: Classifier, seed: int) -> Classifier:
    """An untrained model of ``model``'s architecture: it carries no information about any class."""
    with seeded_rng(seed):
        return create_model(model.config).eval()


Runs = list[tuple[int, tuple[str, int]]]  # (index, (suite entry, seed))

# How ``torchrun``'s ranks share a suite: this rank's runs, and who shares each run's classes.
# Exact either way: a run's randomness is a function of its own seed, and a class-sharded run draws
# it for the whole batch on every rank (pipeline.attacks.sharding).
WORK_SHARING: dict[str, Callable[[Runs], tuple[Runs, ClassShard]]] = {
    "runs": lambda runs: (shard_items(runs), ClassShard()),  # every world-th run, each run alone
    "classes": lambda runs: (runs, ClassShard.across_ranks()),  # every run, on this rank's block of classes
}


def run_suite(
    model: Classifier, judge: Classifier, priors: Mapping[str, Any], public_images: torch.Tensor,
    reference: PrivateReference, cfg: AttackSection, defense_knowledge: DefenseKnowledge,
) -> tuple[dict[str, Any] | None, dict[str, AttackResult]]:  # fmt: skip
    """Every entry × seed, aggregated as mean ± std plus pooled counts; returns the report and first-seed results.

    Under ``torchrun`` the work is shared out as ``cfg.shard`` says (see :data:`WORK_SHARING`) and
    gathered on rank 0, which gets the single-process report; the other ranks get ``(None, {})``.
    """
    classes = cfg.attacked_classes(model.num_classes)
    report: dict[str, Any] = {"seeds": cfg.seeds, "classes": classes, "chance_acc1": 1.0 / judge.num_classes,
                              "attacks": {}}  # fmt: skip
    runs = [(name, seed) for name in cfg.suite for seed in cfg.seeds]
    mine, shard = WORK_SHARING[cfg.shard](list(enumerate(runs)))
    done = []
    for index, (name, seed) in tqdm(mine, desc="attack suite", unit="run", disable=not is_primary()):
        result = run_entry(
            cfg.suite[name], model, classes, cfg.entry_budget(name), seed, priors, public_images, defense_knowledge,
            shard,
        )  # fmt: skip
        if is_primary() or shard.alone:  # a class-sharded run's whole result is on every rank: rank 0 scores it
            done.append((index, score(result, judge, reference, seed), result if seed == cfg.seeds[0] else None))
    gathered = gather_to_primary(done)
    if gathered is None:  # a worker rank: rank 0 writes the report
        return None, {}
    by_index = {index: (row, result) for part in gathered for index, row, result in part}
    per_run: dict[str, list[dict[str, float]]] = {name: [] for name in cfg.suite}
    first_results: dict[str, AttackResult] = {}
    for index, (name, _seed) in enumerate(runs):
        row, result = by_index[index]
        per_run[name].append(row)
        if result is not None:
            first_results.setdefault(name, result)
    for name, rows in per_run.items():
        entry = cfg.suite[name]
        report["attacks"][name] = {
            "attack": entry.attack,
            "loss": getattr(build_attack(entry, defense_knowledge), "identity_loss", None),
            "params": entry.params,
            "reconstructions_per_seed": len(first_results[name].labels),
            "acc1_pooled": {
                "correct": sum(r["acc1_correct"] for r in rows),
                "n": sum(r["reconstructions"] for r in rows),
            },  # fmt: skip
            **{m: mean_std([r[m] for r in rows]) for m in METRICS if not any(r[m] != r[m] for r in rows)},
        }
    return report, first_results
