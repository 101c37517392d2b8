"""``python -m pipeline.results [--readme README.md]``: the README's tables from the reports on disk.

Reads reports/train_*.json, reports/harden.json, reports/attack/hardened.json and reports/gate.json
and renders the utility and worst-case leakage table and, per attack, the floor's, the baseline's and
the hardened model's judge Acc@1 and leakage over the floor with the gate's intervals; when
reports/comparison.json (and reports/autoharden.json) exist, also the defense comparison. With
``--readme`` it replaces the blocks between the markers, so the README's numbers are always the ones
the code produced.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.compare.markdown import main_table, pm
from pipeline.io import atomic_write_text
from pipeline.model_card import attack_table, interval
from pipeline.reports import read_report

BLOCKS = {"results": ("<!-- results:start -->", "<!-- results:end -->"),
          "comparison": ("<!-- comparison:start -->", "<!-- comparison:end -->")}  # fmt: skip


def render(reports: Path) -> str:
    baseline_train = read_report(reports / "train_baseline.json")
    judge = read_report(reports / "train_judge.json")
    harden = read_report(reports / "harden.json")
    hardened_attacks = read_report(reports / "attack" / "hardened.json")
    gate = read_report(reports / "gate.json")
    seeds = hardened_attacks["seeds"]
    confidence = f"{gate['confidence'] * 100:g}%"
    worst = {m: gate[f"{m}_worst_case_leakage"] for m in ("baseline", "hardened")}
    lines = [
        f"Independent judge's natural accuracy: {judge['natural_accuracy']:.3f}. Attack Acc@1: the judge's correct "
        f"calls over all reconstructions pooled over {len(seeds)} attack seeds {seeds}, {confidence} "
        f"{gate['intervals']['acc1'].title()} intervals. Floor: the same suite against a model that knows nothing "
        f"of the private classes. Leakage = Acc@1 − floor, {confidence} {gate['intervals']['leakage'].title()} "
        "intervals. KNN = squared L2 in judge features to the nearest private training image of the class "
        "(higher = less leakage), mean ± std over seeds.",
        "",
        "| | baseline | CALoR-hardened |",
        "|---|---|---|",
        f"| natural accuracy (private test) | {baseline_train['natural_accuracy']:.3f} | "
        f"{harden['natural_accuracy']:.3f} |",
        f"| train mean p_y | {baseline_train['train_mean_true_class_prob']:.3f} | "
        f"{harden['train_mean_true_class_prob']:.3f} |",
        f"| **worst-case leakage** | **{interval(worst['baseline'], True)}** (`{worst['baseline']['attack']}`) | "
        f"**{interval(worst['hardened'], True)}** (`{worst['hardened']['attack']}`) |",
        f"| worst-case Acc@1 | {gate['baseline_worst_case_acc1']:.2f} (`{gate['baseline_deciding_attack']}`) | "
        f"{gate['hardened_worst_case_acc1']:.2f} (`{gate['deciding_attack']}`) |",
        "",
        *attack_table(gate, hardened_attacks),
    ]
    not_passed = [f"{c['name']} ({c['status']})" for c in gate["checks"] if c["status"] != "pass"]
    lines += [
        "",
        f"Gate verdict: **{gate['verdict']}**"
        + (f" (not passed: {', '.join(not_passed)})" if not_passed else "")
        + f". Why: {gate['verdict_reason']}.",
    ]
    return "\n".join(lines) + "\n"


def render_comparison(reports: Path) -> str | None:
    """The comparison's main table and the auto-harden choice; None before `make compare` ran."""
    path = reports / "comparison.json"
    if not path.is_file():
        return None
    table = read_report(path)
    lines = [f"![trade-off](reports/{table['figures']['tradeoff']})", "", *main_table(table), ""]
    autoharden = reports / "autoharden.json"
    if autoharden.is_file():
        result = read_report(autoharden)
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
