"""What every comparison row reads before its first seed: the shared inputs and the gated seed loop.

The compare stages (a defense setting, the baseline, the floor, the public-only reference) take
their paths from dvc.yaml and hand them here. Every section is validated up front, the attack suite
with the compare overlay included, so nothing is refused after a seed has trained and attacked.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from pipeline.checkpoint import load_checkpoint
from pipeline.compare.config import CompareSection
from pipeline.compare.run import CompareInputs, SeedLoop
from pipeline.config import load_section, parse_section, read_params
from pipeline.data import load_labelled, load_public
from pipeline.defenses import DefenseData
from pipeline.gate import GateSection
from pipeline.prior import load_prior
from pipeline.reports import read_report
from pipeline.suite import AttackSection, PrivateReference
from pipeline.target_gan import TargetGANSection

PathLike = str | os.PathLike


def load_inputs(
    params: PathLike, compare: CompareSection, *, baseline: PathLike, baseline_metrics: PathLike, judge: PathLike,
    prior: PathLike, data: PathLike,
) -> CompareInputs:  # fmt: skip
    """The trained baseline (and its accuracy), judge, GAN prior, private and public data, target-GAN settings."""
    baseline_model, _ = load_checkpoint(baseline)
    judge_model, _ = load_checkpoint(judge)
    prior_model, _ = load_prior(prior)
    train, test = load_labelled(data, "private_train"), load_labelled(data, "private_test")
    baseline_accuracy = read_report(baseline_metrics)["natural_accuracy"]
    target_gan = parse_section(
        "target_gan", compare.target_gan_raw(read_params(params)["target_gan"]), TargetGANSection,
        source=f"{params} (target_gan with compare.target_gan)",
    )  # fmt: skip
    return CompareInputs(
        baseline_model, baseline_accuracy, judge_model, prior_model, load_public(data).images,
        DefenseData(train, test), PrivateReference.build(judge_model, train, test), target_gan,
    )  # fmt: skip


def attacks_by_seed(path: PathLike | None) -> dict[int, dict[str, Any]] | None:
    """A row's attack reports keyed by compare seed (the baseline's and the floor's gate the others)."""
    if path is None:
        return None
    return {r["seed"]: r["attacks"] for r in read_report(path)["seeds"]}


def compare_attack(params: PathLike, compare: CompareSection) -> AttackSection:
    """The ``attack`` section with the compare overlay applied, validated once (its seeds are set per seed)."""
    raw = compare.attack_raw(read_params(params)["attack"], compare.seeds[0])
    return parse_section("attack", raw, AttackSection, source=f"{params} (attack with compare.attack)")


def seed_loop(
    params: PathLike, compare: CompareSection, inputs: CompareInputs, *, out: PathLike,
    baseline_report: PathLike | None = None, floor_report: PathLike | None = None,
) -> SeedLoop:  # fmt: skip
    """The per-seed loop every comparison row shares (attack overlay, gate, baseline and floor runs, outputs)."""
    attack = compare_attack(params, compare)
    return SeedLoop(
        inputs=inputs,
        attack_for_seed=lambda seed: attack.model_copy(update={"seeds": [seed]}),
        gate=load_section("gate", params, GateSection),
        baseline_attacks=attacks_by_seed(baseline_report),
        out=Path(out),
        floor_attacks=attacks_by_seed(floor_report),
    )


def row_inputs(params: PathLike, compare: CompareSection, args: argparse.Namespace) -> tuple[CompareInputs, SeedLoop]:
    """A compare stage's inputs and seed loop, from the path arguments ``stage_parser`` gives it."""
    inputs = load_inputs(
        params, compare, baseline=args.baseline, baseline_metrics=args.baseline_metrics, judge=args.judge,
        prior=args.prior, data=args.data,
    )  # fmt: skip
    loop = seed_loop(
        params, compare, inputs, out=args.out, baseline_report=args.baseline_report, floor_report=args.floor_report
    )
    return inputs, loop
