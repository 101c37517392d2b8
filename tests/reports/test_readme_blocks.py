"""`python -m pipeline.results --readme` fills the README's blocks from the reports, nothing else."""

from __future__ import annotations

import json

import pytest

from pipeline.compare.table import comparison
from pipeline.gate import GateSection
from pipeline.results import render_comparison, replace_block
from tests.compare.fakes import setting_report

GATE = GateSection(max_accuracy_drop=0.05, max_attack_acc1=0.3, min_knn_distance=1.0, min_baseline_attack_acc=0.6)


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
