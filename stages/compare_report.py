"""Stage compare_report: reports/comparison.{md,json}, the trade-off and per-attack PNGs, the grids."""

from __future__ import annotations

from pathlib import Path

import torch

from pipeline.compare.figures import attack_heatmap, side_by_side_grid, tradeoff_plot
from pipeline.compare.markdown import render
from pipeline.compare.table import comparison, read_setting_reports
from pipeline.config import load_section
from pipeline.data import load_labelled, load_split_manifest
from pipeline.gate import GateSection
from pipeline.io import atomic_write_json, atomic_write_text
from pipeline.stage_utils import stage_parser

COMMAND = "dvc repro compare/dvc.yaml"


def load_reconstructions(models: Path, settings: list[str]) -> dict[str, dict]:
    found = {}
    for name in settings:
        path = models / name / "reconstructions.pt"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing; re-run compare/dvc.yaml:{name}")
        found[name] = torch.load(path, map_location="cpu", weights_only=True)
    return found


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, "runs", "models", "data", "out", "markdown", "figures")
    parser.add_argument("--grid-attacks", nargs="+", default=["plgmi", "plgmi_features", "deepinversion"])
    args = parser.parse_args(argv)
    gate = load_section("gate", args.params, GateSection)
    table = comparison(read_setting_reports(args.runs), gate)
    figures_dir, markdown = Path(args.figures), Path(args.markdown)
    figures = {"tradeoff": figures_dir / "tradeoff.png", "heatmap": figures_dir / "per_attack.png"}
    tradeoff_plot(figures["tradeoff"], table)
    attack_heatmap(figures["heatmap"], table)
    settings = [row["setting"] for row in table["rows"]]
    reconstructions = load_reconstructions(Path(args.models), settings)
    test = load_labelled(args.data, "private_test")
    class_names = [c["name"] for c in load_split_manifest(args.data)["classes"]]
    for attack in args.grid_attacks:
        per_setting = {name: recs[attack] for name, recs in reconstructions.items() if attack in recs}
        figures[f"grid_{attack}"] = figures_dir / f"grid_{attack}.png"
        side_by_side_grid(figures[f"grid_{attack}"], attack, per_setting, test.images, test.labels, class_names)
    relative = {name: str(path.relative_to(markdown.parent)) for name, path in figures.items()}
    atomic_write_json(args.out, {**table, "figures": relative})
    atomic_write_json(figures_dir / "tradeoff.json", [
        {"setting": r["setting"], "kind": r["kind"], "worst_case_acc1": r["worst_case_acc1"]["mean"],
         "natural_accuracy": r["natural_accuracy"]["mean"]}
        for r in table["rows"]
    ])  # fmt: skip
    atomic_write_text(markdown, render(table, relative, COMMAND))
    print(f"comparison: {len(table['rows'])} settings; approved on every seed: {table['approved_on_every_seed']}")


if __name__ == "__main__":
    main()
