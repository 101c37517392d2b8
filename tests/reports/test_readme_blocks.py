"""`python -m pipeline.results --readme` fills the README's blocks from the reports, nothing else."""

from __future__ import annotations

import json

import pytest

from pipeline.compare.table import comparison
from pipeline.gate import evaluate_gate
from pipeline.results import render, render_comparison, replace_block
from tests.compare.fakes import attacks_report, gate_section, setting_report

GATE = gate_section()


def test_replace_block_keeps_the_text_around_it():
    text = "intro\n<!-- comparison:start -->\nold\n<!-- comparison:end -->\noutro\n"
    assert replace_block(text, "new\n", "comparison") == (
        "intro\n<!-- comparison:start -->\nnew\n<!-- comparison:end -->\noutro\n"
    )
    with pytest.raises(SystemExit, match="results:start"):
        replace_block("no markers", "x", "results")


def test_comparison_block_shows_the_rows_and_the_autoharden_choice(tmp_path):
    reports = [
        setting_report("baseline", "baseline", [(0.9, {"gmi": 0.8}, None)]),
        setting_report("calor", "defense", [(0.89, {"gmi": 0.5}, "rejected")]),
    ]
    table = {**comparison(reports, GATE), "figures": {"tradeoff": "comparison/tradeoff.png"}}
    (tmp_path / "comparison.json").write_text(json.dumps(table))
    assert render_comparison(tmp_path / "missing") is None
    block = render_comparison(tmp_path)
    assert "![trade-off](reports/comparison/tradeoff.png)" in block
    assert "| **calor** — CALOR | defense | 0.890 ± 0.000 |" in block
    chosen = {"rank": 5, "b": 4.0, "worst_case_acc1": {"mean": 0.5, "std": 0.1},
              "natural_accuracy_drop": {"mean": 0.01}}  # fmt: skip
    (tmp_path / "autoharden.json").write_text(json.dumps({"chosen": chosen, "chosen_passes_gate": False}))
    assert "chose r = 5, b = 4 (worst case 0.50 ± 0.10, accuracy drop +0.010); passes the gate: **no**" in (
        render_comparison(tmp_path)
    )


def test_results_block_shows_acc1_floor_and_leakage_with_intervals_and_the_verdict(tmp_path):
    baseline, floor = attacks_report(gmi=0.9, pix=0.4), attacks_report(gmi=0.1, pix=0.1)
    hardened = {**attacks_report(gmi=0.3, pix=0.2), "seeds": [0, 1]}
    harden = {"natural_accuracy": 0.88, "baseline_natural_accuracy": 0.9, "train_mean_true_class_prob": 0.7}
    files = {
        "train_baseline.json": {"natural_accuracy": 0.9, "train_mean_true_class_prob": 0.95},
        "train_judge.json": {"natural_accuracy": 0.83}, "harden.json": harden, "attack/hardened.json": hardened,
        "gate.json": evaluate_gate(GATE, baseline, hardened, floor, harden, "abc"),
    }  # fmt: skip
    for name, data in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(json.dumps(data))
    block = render(tmp_path)
    assert "| **worst-case leakage** | **+0.80 [+0.73, +0.85]** (`gmi`) | **+0.20 [+0.12, +0.28]** (`gmi`) |" in block
    assert "| `pix` | 0.10 [0.07, 0.15] | 0.40 [0.33, 0.47] | 0.20 [0.15, 0.26] | +0.30 [+0.22, +0.38] |" in block
    assert "95% Wilson intervals" in block and "control" not in block
    assert "Gate verdict: **inconclusive** (not passed: worst_case_attack_acc1 (undecided))." in block
