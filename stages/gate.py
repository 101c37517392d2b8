"""Stage gate: approve, reject or call inconclusive; always writes reports/gate.json and exits 0.

``--strict`` exits 1 unless the verdict is ``approved`` (for CI jobs that must stop on a red gate).
"""

from __future__ import annotations

import sys

from pipeline.config import MlflowSection, load_section
from pipeline.gate import GateSection, evaluate_gate
from pipeline.io import atomic_write_json, sha256_file
from pipeline.stage_utils import read_report, stage_parser
from pipeline.tracking import stage_run


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser(__doc__, "baseline-attacks", "hardened-attacks", "harden-metrics", "checkpoint", "out")
    parser.add_argument("--strict", action="store_true", help="exit 1 unless the verdict is approved")
    args = parser.parse_args(argv)
    thresholds = load_section("gate", args.params, GateSection)
    experiment = load_section("mlflow", args.params, MlflowSection).experiment
    hardened = read_report(args.hardened_attacks)
    checkpoint_sha = sha256_file(args.checkpoint)
    if hardened.get("checkpoint_sha256") != checkpoint_sha:
        raise SystemExit(f"{args.hardened_attacks}: attacked a different checkpoint than {args.checkpoint}")
    with stage_run("gate", {"gate": thresholds.model_dump()}, experiment) as run:
        report = evaluate_gate(
            thresholds, read_report(args.baseline_attacks), hardened, read_report(args.harden_metrics), checkpoint_sha
        )
        atomic_write_json(args.out, report)
        run.log_metrics({c["name"]: c["value"] for c in report["checks"]})
        run.set_tag("gate.verdict", report["verdict"])
        run.log_artifact(args.out)
    print(f"gate: {report['verdict']} (failed: {report['failed_checks'] or 'none'})")
    return 1 if args.strict and report["verdict"] != "approved" else 0


if __name__ == "__main__":
    sys.exit(main())
