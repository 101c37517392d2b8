"""Stage gate: approve, reject or call inconclusive; always writes reports/gate.json and exits 0.

``--floor-attacks`` is the suite run against a model that knows nothing of the private classes; both
models' leakage is measured over it. ``--strict`` exits 1 unless the verdict is ``approved`` (for CI
jobs that must stop on a red gate). Reports the gate cannot judge end the stage with every problem
and write nothing.
"""

from __future__ import annotations

import sys

from pipeline.config import load_section
from pipeline.gate import GateSection, evaluate_gate
from pipeline.io import atomic_write_json, sha256_file
from pipeline.reports import read_report
from pipeline.stage_utils import stage_parser
from pipeline.tracking import MlflowSection, stage_run


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser(
        __doc__, "baseline-attacks", "hardened-attacks", "floor-attacks", "harden-metrics", "checkpoint", "out"
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 unless the verdict is approved")
    args = parser.parse_args(argv)
    thresholds = load_section("gate", args.params, GateSection)
    experiment = load_section("mlflow", args.params, MlflowSection).experiment
    hardened = read_report(args.hardened_attacks)
    checkpoint_sha = sha256_file(args.checkpoint)
    if hardened.get("checkpoint_sha256") != checkpoint_sha:
        raise SystemExit(f"{args.hardened_attacks}: attacked a different checkpoint than {args.checkpoint}")
    inputs = (read_report(args.baseline_attacks), hardened, read_report(args.floor_attacks),
              read_report(args.harden_metrics))  # fmt: skip
    try:
        report = evaluate_gate(thresholds, *inputs, checkpoint_sha)
    except ValueError as err:
        raise SystemExit(
            f"{err}\n(baseline: {args.baseline_attacks}, hardened: {args.hardened_attacks}, "
            f"floor: {args.floor_attacks}, harden: {args.harden_metrics})"
        ) from None
    with stage_run("gate", {"gate": thresholds.model_dump()}, experiment) as run:
        atomic_write_json(args.out, report)
        metrics = {c["name"]: c["value"] for c in report["checks"]}
        metrics.update({f"{c['name']}.bound": c["bound"] for c in report["checks"] if c["bound"] is not None})
        run.log_metrics(metrics)
        run.set_tag("gate.verdict", report["verdict"])
        run.log_artifact(args.out)
    undecided = f"; undecided: {report['undecided_checks']}" if report["undecided_checks"] else ""
    print(f"gate: {report['verdict']} (not passed: {report['failed_checks'] or 'none'}{undecided})")
    return 1 if args.strict and report["verdict"] != "approved" else 0


if __name__ == "__main__":
    sys.exit(main())
