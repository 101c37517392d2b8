"""Stage model_card: reports/model_card.md for the hardened model, whatever the gate decided."""

from __future__ import annotations

from pipeline.config import load_section, read_params
from pipeline.data import load_split_manifest
from pipeline.io import atomic_write_text
from pipeline.model_card import render_model_card
from pipeline.reports import read_report
from pipeline.stage_utils import stage_parser
from pipeline.tracking import MlflowSection, stage_run


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(
        __doc__, "data", "baseline-metrics", "judge-metrics", "harden-metrics", "baseline-attacks",
        "hardened-attacks", "gate", "out",
    )  # fmt: skip
    args = parser.parse_args(argv)
    attacks = {"baseline": read_report(args.baseline_attacks), "hardened": read_report(args.hardened_attacks)}
    card = render_model_card(
        read_params(args.params), load_split_manifest(args.data), read_report(args.baseline_metrics),
        read_report(args.judge_metrics), read_report(args.harden_metrics), attacks, read_report(args.gate),
    )  # fmt: skip
    experiment = load_section("mlflow", args.params, MlflowSection).experiment
    with stage_run("model_card", {}, experiment) as run:
        atomic_write_text(args.out, card)
        run.log_artifact(args.out)
    print(f"model card: {args.out}")


if __name__ == "__main__":
    main()
