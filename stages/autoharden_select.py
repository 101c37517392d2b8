"""Stage autoharden_select: choose CALoR's (r, b) from the sweep; reports/autoharden.{json,md} + heat map."""

from __future__ import annotations

from pathlib import Path

from pipeline.compare.autoharden import grid_point, merge_seeds, select
from pipeline.compare.figures import sweep_heatmap
from pipeline.compare.markdown import render_autoharden
from pipeline.config import load_section
from pipeline.gate import GateSection
from pipeline.io import atomic_write_json, atomic_write_text
from pipeline.reports import read_report
from pipeline.stage_utils import stage_parser

COMMAND = "dvc repro autoharden/dvc.yaml"


def main(argv: list[str] | None = None) -> None:
    args = stage_parser(__doc__, "runs", "out", "markdown", "figure").parse_args(argv)
    gate = load_section("gate", args.params, GateSection)
    paths = sorted(Path(args.runs).glob("*.json"))
    if not paths:
        raise SystemExit(f"{args.runs}: no sweep reports; run `{COMMAND}`")
    result = select([grid_point(r) for r in merge_seeds([read_report(p) for p in paths])], gate)
    figure = Path(args.figure)
    sweep_heatmap(figure, result)
    atomic_write_json(args.out, result)
    figure_link = str(figure.relative_to(Path(args.markdown).parent))
    atomic_write_text(args.markdown, render_autoharden(result, figure_link, COMMAND))
    chosen = result["chosen"]
    print(f"auto-harden: chosen {(chosen['rank'], chosen['b']) if chosen else None}; "
          f"passes gate: {result['chosen_passes_gate']}")  # fmt: skip


if __name__ == "__main__":
    main()
