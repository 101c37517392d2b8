"""``python -m pipeline.results [--readme README.md]``: the README's tables from the reports on disk.

Reads reports/train_*.json, reports/harden.json, reports/attack/*.json and reports/gate.json and
renders one markdown table (natural accuracy, per-attack judge Acc@1 and KNN distance, mean ± std
over attack seeds); when reports/comparison.json (and reports/autoharden.json) exist, also the
defense comparison. With ``--readme`` it replaces the blocks between the markers, so the README's
numbers are always the ones the code produced.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from pipeline.compare.markdown import main_table, pm
from pipeline.io import atomic_write_text

BLOCKS = {"results": ("<!-- results:start -->", "<!-- results:end -->"),
          "comparison": ("<!-- comparison:start -->", "<!-- comparison:end -->")}  # fmt: skip


def _load(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise SystemExit(f"{path}: not found; run `dvc repro` first")
    return json.loads(path.read_text())


def render(reports: Path) -> str:
    baseline_train = _load(reports / "train_baseline.json")
    judge = _load(reports / "train_judge.json")
    harden = _load(reports / "harden.json")
    attacks = {name: _load(reports / "attack" / f"{name}.json") for name in ("baseline", "hardened")}
    gate = _load(reports / "gate.json")
    seeds = attacks["baseline"]["seeds"]
    lines = [
        f"Independent judge's natural accuracy: {judge['natural_accuracy']:.3f}. "
        f"Attack metrics: mean ± std over {len(seeds)} attack seeds {seeds}; "
        f"{attacks['baseline']['attacks'][next(iter(attacks['baseline']['attacks']))]['reconstructions_per_seed']}"
        " reconstructions per seed; Acc@1 by the judge (chance 0.10); KNN = squared L2 in judge features to the "
        "nearest private training image of the class (higher = less leakage).",
        "",
        "| | baseline | CALoR-hardened |",
        "|---|---|---|",
        f"| natural accuracy (private test) | {baseline_train['natural_accuracy']:.3f} | "
        f"{harden['natural_accuracy']:.3f} |",
        f"| train mean p_y | {baseline_train['train_mean_true_class_prob']:.3f} | "
        f"{harden['train_mean_true_class_prob']:.3f} |",
    ]
    for name in attacks["baseline"]["attacks"]:
        row = [attacks[m]["attacks"].get(name) for m in ("baseline", "hardened")]
        cells = [f"{pm(r['acc1'], 2)} / {pm(r['knn_distance'], 1)}" if r else "—" for r in row]
        lines.append(f"| `{name}` Acc@1 / KNN | {cells[0]} | {cells[1]} |")
    control = [attacks[m]["control"]["acc1"] for m in ("baseline", "hardened")]
    lines.append(f"| control: untrained target, Acc@1 | {pm(control[0], 2)} | {pm(control[1], 2)} |")
    lines += [
        f"| **worst case Acc@1** | **{gate['baseline_worst_case_acc1']:.2f}** (`{gate['baseline_deciding_attack']}`)"
        f" | **{gate['hardened_worst_case_acc1']:.2f}** (`{gate['deciding_attack']}`) |",
        "",
        f"Gate verdict: **{gate['verdict']}**"
        + (f" (failed: {', '.join(gate['failed_checks'])})" if gate["failed_checks"] else ""),
    ]
    return "\n".join(lines) + "\n"


def render_comparison(reports: Path) -> str | None:
    """The comparison's main table and the auto-harden choice; None before `make compare` ran."""
    path = reports / "comparison.json"
    if not path.is_file():
        return None
    table = _load(path)
    lines = [f"![trade-off](reports/{table['figures']['tradeoff']})", "", *main_table(table), ""]
    autoharden = reports / "autoharden.json"
    if autoharden.is_file():
        result = _load(autoharden)
        chosen = result["chosen"]
        if chosen is None:
            choice = "no point kept the accuracy budget."
        else:
            choice = (
                f"chose r = {chosen['rank']}, b = {chosen['b']:g} (worst case {pm(chosen['worst_case_acc1'], 2)}, "
                f"accuracy drop {chosen['natural_accuracy_drop']['mean']:+.3f}); passes the gate: "
                f"**{'yes' if result['chosen_passes_gate'] else 'no'}**."
            )
        lines.append(f"Auto-harden (reports/autoharden.md): {choice}")
        lines.append("")
    return "\n".join(lines)


def replace_block(text: str, block: str, name: str = "results") -> str:
    start, end = BLOCKS[name]
    if start not in text or end not in text:
        raise SystemExit(f"README has no {start} … {end} block to replace")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{block}{end}{tail}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reports", type=Path, default=Path("reports"))
    parser.add_argument("--readme", type=Path)
    args = parser.parse_args()
    blocks = {"results": render(args.reports), "comparison": render_comparison(args.reports)}
    if args.readme:
        text = args.readme.read_text()
        for name, block in blocks.items():
            if block is not None:
                text = replace_block(text, block, name)
        atomic_write_text(args.readme, text)
    print("\n".join(b for b in blocks.values() if b))


if __name__ == "__main__":
    main()
