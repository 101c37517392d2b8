"""Stage compare@<setting> (and compare_baseline): one comparison setting over every compare seed.

Fine-tunes the trained baseline with the setting's defense once per seed, attacks each result with
the full suite (one attack seed per compare seed, the same for every setting), and gates it against
the baseline's report for the same seed. ``--set key=value`` overrides the setting's harden block
(the auto-harden sweep uses it for CALoR's r and b); ``--name baseline`` attacks the baseline itself;
``--name harden`` takes the shipped ``harden`` section of params.yaml as the setting; ``--seeds``
replaces ``compare.seeds``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from pipeline.checkpoint import load_checkpoint
from pipeline.compare.config import SEED_STRIDE, CompareSection, CompareSetting, parse_overrides
from pipeline.compare.run import CompareInputs, SeedLoop, TrainedModel, harden, write_report
from pipeline.config import MlflowSection, load_section, parse_section, read_params
from pipeline.data import load_labelled, load_public
from pipeline.defenses import DefenseData
from pipeline.floor import FloorSection, build_floor
from pipeline.gate import GateSection
from pipeline.prior import load_prior
from pipeline.stage_utils import read_report, stage_parser
from pipeline.suite import AttackSection, PrivateReference
from pipeline.target_gan import TargetGANSection
from pipeline.tracking import stage_run


def floor(inputs: CompareInputs, section: FloorSection, seed: int, data: str) -> TrainedModel:
    """The floor model for one compare seed (its init/training seed shifted like every row's)."""
    seeded = section.model_copy(update={"seed": section.seed + seed * SEED_STRIDE})
    public = load_labelled(data, "public") if section.kind == "public_only" else None
    start = time.perf_counter()
    model = build_floor(inputs.baseline, seeded, public)
    return TrainedModel(model, {"defense": "none", "floor": seeded.kind}, time.perf_counter() - start,
                        {"floor": seeded.model_dump()})  # fmt: skip


BASELINE, SHIPPED, FLOOR = "baseline", "harden", "floor"


def load_inputs(args, compare: CompareSection) -> CompareInputs:
    baseline, _ = load_checkpoint(args.baseline)
    judge, _ = load_checkpoint(args.judge)
    prior, _ = load_prior(args.prior)
    train, test = load_labelled(args.data, "private_train"), load_labelled(args.data, "private_test")
    baseline_accuracy = read_report(args.baseline_metrics)["natural_accuracy"]
    params = read_params(args.params)
    return CompareInputs(
        baseline, baseline_accuracy, judge, prior, load_public(args.data).images,
        DefenseData(train, test), PrivateReference.build(judge, train, test),
        parse_section("target_gan", compare.target_gan_raw(params["target_gan"]), TargetGANSection,
                      source=f"{args.params} (target_gan with compare.target_gan)"),
    )  # fmt: skip


def attacks_by_seed(path: str | None) -> dict[int, dict[str, Any]] | None:
    """A row's attack reports keyed by compare seed (the baseline's and the floor's gate the others)."""
    if path is None:
        return None
    report = read_report(path)
    return {r["seed"]: r["attacks"] for r in report["seeds"]}


def seed_loop(args, compare: CompareSection) -> SeedLoop:
    """The per-seed loop every comparison row shares (attack overlay, gate, baseline runs, outputs)."""
    attack_raw = read_params(args.params)["attack"]
    return SeedLoop(
        inputs=load_inputs(args, compare),
        attack_for_seed=lambda seed: AttackSection.model_validate(compare.attack_raw(attack_raw, seed)),
        gate=load_section("gate", args.params, GateSection),
        baseline_attacks=attacks_by_seed(args.baseline_report),
        out=Path(args.out),
        floor_attacks=attacks_by_seed(getattr(args, "floor_report", None)),
    )


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, "name", "baseline", "baseline-metrics", "judge", "prior", "data", "out", "report")
    parser.add_argument("--baseline-report", help="the baseline's compare report: gate each seed against it")
    parser.add_argument("--floor-report", help="the floor's compare report: the leakage floor per seed")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override the setting")
    parser.add_argument("--label", help="label in the report (default: the setting's)")
    parser.add_argument("--seeds", type=int, nargs="+", help="compare seeds (default: compare.seeds)")
    args = parser.parse_args(argv)
    compare = load_section("compare", args.params, CompareSection)
    experiment = load_section("mlflow", args.params, MlflowSection).experiment
    if args.name == BASELINE:
        setting, label, kind = None, "baseline (undefended)", "baseline"
    elif args.name == FLOOR:
        setting, label, kind = None, "floor: knows nothing of the private classes", "floor"
    elif args.name == SHIPPED:
        shipped = CompareSetting(label="shipped harden section", harden=read_params(args.params)["harden"])
        setting, label, kind = shipped, args.label or shipped.label, shipped.kind
    elif args.name in compare.settings:
        setting = compare.settings[args.name]
        label, kind = args.label or setting.label, setting.kind
    else:
        raise SystemExit(f"{args.params}: compare.settings has no {args.name!r}; known: {sorted(compare.settings)}")
    overrides = parse_overrides(args.set)
    loop = seed_loop(args, compare)

    def train(seed: int):
        if args.name == FLOOR:
            return floor(loop.inputs, load_section("floor", args.params, FloorSection), seed, args.data)
        return harden(loop.inputs, setting.harden_section(seed, overrides) if setting else None)

    with stage_run(f"compare@{args.name}", {"setting": args.name, "overrides": overrides}, experiment) as run:
        run.log_data(args.data, private_train="training", private_test="evaluation", public="attack")
        records = loop.run(args.seeds or compare.seeds, train, args.name, run)
        report = {
            "setting": args.name, "label": label, "kind": kind, "overrides": overrides,
            "harden": setting.harden_section(0, overrides).model_dump() if setting else None,
        }  # fmt: skip
        write_report(args.report, report, records, run)


if __name__ == "__main__":
    main()
