"""Stage compare@<setting> (and compare_baseline): one comparison setting over every compare seed.

Fine-tunes the trained baseline with the setting's defense once per seed, attacks each result with
the full suite (one attack seed per compare seed, the same for every setting), and gates it against
the baseline's report for the same seed. ``--set key=value`` overrides the setting's harden block
(the auto-harden sweep uses it for CALoR's r and b); ``--name baseline`` attacks the baseline itself;
``--name harden`` takes the shipped ``harden`` section of params.yaml as the setting; ``--seeds``
replaces ``compare.seeds``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from pipeline.checkpoint import load_checkpoint, save_checkpoint
from pipeline.compare.config import CompareSection, CompareSetting, parse_overrides
from pipeline.compare.run import CompareInputs, evaluate_seed, gate_record, progress, summarise
from pipeline.config import MlflowSection, load_section, read_params
from pipeline.defenses import DefenseData
from pipeline.gate import GateSection
from pipeline.io import atomic_write_json, atomic_write_with, sha256_file
from pipeline.prior import load_prior
from pipeline.stage_utils import load_part, stage_parser
from pipeline.suite import AttackSection, PrivateReference
from pipeline.tracking import stage_run

BASELINE, SHIPPED = "baseline", "harden"


def load_inputs(args) -> CompareInputs:
    baseline, _ = load_checkpoint(args.baseline)
    judge, _ = load_checkpoint(args.judge)
    prior, _ = load_prior(args.prior)
    train, test = load_part(args.data, "private_train"), load_part(args.data, "private_test")
    baseline_accuracy = json.loads(Path(args.baseline_metrics).read_text())["natural_accuracy"]
    return CompareInputs(
        baseline, baseline_accuracy, judge, prior, load_part(args.data, "public").images,
        DefenseData(train, test), PrivateReference.build(judge, train, test),
    )  # fmt: skip


def baseline_attacks_by_seed(path: str | None) -> dict[int, dict[str, Any]]:
    if path is None:
        return {}
    report = json.loads(Path(path).read_text())
    return {r["seed"]: r["attacks"] for r in report["seeds"]}


def save_reconstructions(path: Path, results: dict) -> None:
    """Seed-0 reconstructions of every attack, as uint8, for the side-by-side grids."""
    payload = {
        name: {"images": (r.images.clamp(0, 1) * 255).round().to(torch.uint8), "labels": r.labels}
        for name, r in results.items()
    }
    atomic_write_with(path, lambda f: torch.save(payload, f))


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, "name", "baseline", "baseline-metrics", "judge", "prior", "data", "out", "report")
    parser.add_argument("--baseline-report", help="the baseline's compare report: gate each seed against it")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override the setting")
    parser.add_argument("--label", help="label in the report (default: the setting's)")
    parser.add_argument("--seeds", type=int, nargs="+", help="compare seeds (default: compare.seeds)")
    args = parser.parse_args(argv)
    compare = load_section("compare", args.params, CompareSection)
    attack_raw = read_params(args.params)["attack"]
    gate = load_section("gate", args.params, GateSection)
    experiment = load_section("mlflow", args.params, MlflowSection).experiment
    if args.name == BASELINE:
        setting, label, kind = None, "baseline (undefended)", "baseline"
    elif args.name == SHIPPED:
        shipped = CompareSetting(label="shipped harden section", harden=read_params(args.params)["harden"])
        setting, label, kind = shipped, args.label or shipped.label, shipped.kind
    elif args.name in compare.settings:
        setting = compare.settings[args.name]
        label, kind = args.label or setting.label, setting.kind
    else:
        raise SystemExit(f"{args.params}: compare.settings has no {args.name!r}; known: {sorted(compare.settings)}")
    overrides = parse_overrides(args.set)
    inputs = load_inputs(args)
    baseline_attacks = baseline_attacks_by_seed(args.baseline_report)
    out = Path(args.out)
    records = []
    with stage_run(f"compare@{args.name}", {"setting": args.name, "overrides": overrides}, experiment) as run:
        for seed in progress(args.seeds or compare.seeds, args.name):
            section = setting.harden_section(seed, overrides) if setting else None
            attack = AttackSection.model_validate(compare.attack_raw(attack_raw, seed))
            checkpoint = out / f"seed{seed}.pt"
            outcome = evaluate_seed(inputs, section, attack, seed)
            save_checkpoint(checkpoint, outcome.model, {"harden": section.model_dump() if section else None})
            if args.baseline_report:
                if seed not in baseline_attacks:
                    raise SystemExit(f"{args.baseline_report}: no run for compare seed {seed}; re-run the baseline")
                outcome.record["gate"] = gate_record(
                    outcome.record, inputs.baseline_natural_accuracy, gate, baseline_attacks[seed],
                    sha256_file(checkpoint),
                )  # fmt: skip
            records.append(outcome.record)
            if len(records) == 1:  # the first seed's reconstructions feed the side-by-side grids
                save_reconstructions(out / "reconstructions.pt", outcome.attack_results)
            run.log_metrics({"natural_accuracy": outcome.record["natural_accuracy"],
                             "worst_case_acc1": outcome.record["worst_case_acc1"]}, prefix=f"seed{seed}.")  # fmt: skip
        report = {
            "setting": args.name, "label": label, "kind": kind, "overrides": overrides,
            "harden": setting.harden_section(0, overrides).model_dump() if setting else None,
            "seeds": records, "summary": summarise(records),
        }  # fmt: skip
        atomic_write_json(args.report, report)
        run.log_metrics({k: v["mean"] for k, v in report["summary"].items() if isinstance(v, dict) and "mean" in v})
        run.log_artifact(args.report)
    summary = report["summary"]
    print(
        f"compare {args.name}: natural accuracy {summary['natural_accuracy']['mean']:.3f} ± "
        f"{summary['natural_accuracy']['std']:.3f}, worst-case Acc@1 {summary['worst_case_acc1']['mean']:.2f} ± "
        f"{summary['worst_case_acc1']['std']:.2f}, gate {summary.get('gate_verdicts', 'n/a')}"
    )


if __name__ == "__main__":
    main()
