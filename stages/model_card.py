"""Stage model_card: reports/model_card.md for the hardened model, whatever the gate decided."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.config import MlflowSection, load_section, read_params
from pipeline.io import atomic_write_text
from pipeline.model_card import render_model_card
from pipeline.stage_utils import read_manifest, stage_parser
from pipeline.tracking import stage_run


def _read(path: str) -> dict:
    file = Path(path)
    if not file.is_file():
        raise SystemExit(f"{file}: not found; run the stages that produce it first")
    return json.loads(file.read_text())


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(
        __doc__, "data", "baseline-metrics", "judge-metrics", "harden-metrics", "baseline-attacks",
        "hardened-attacks", "gate", "out",
    )  # fmt: skip
    args = parser.parse_args(argv)
    card = render_model_card(
        read_params(args.params), read_manifest(args.data), _read(args.baseline_metrics), _read(args.judge_metrics),
        _read(args.harden_metrics),
        {"baseline": _read(args.baseline_attacks), "hardened": _read(args.hardened_attacks)}, _read(args.gate),
    )  # fmt: skip
    experiment = load_section("mlflow", args.params, MlflowSection).experiment
    with stage_run("model_card", {}, experiment) as run:
        atomic_write_text(args.out, card)
        run.log_artifact(args.out)
    print(f"model card: {args.out}")


if __name__ == "__main__":
    main()
