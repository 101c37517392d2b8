"""The comparison table, markdown and figures agree with the per-setting reports they are built from."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from pipeline.compare.figures import attack_heatmap, side_by_side_grid, tradeoff_plot
from pipeline.compare.markdown import render
from pipeline.compare.table import comparison, read_setting_reports
from tests.compare.fakes import gate_section, setting_report

GATE = gate_section()


def write_reports(directory, *reports) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for report in reports:
        (directory / f"{report['setting']}.json").write_text(json.dumps(report))


@pytest.fixture()
def runs(tmp_path):
    runs = tmp_path / "compare"
    write_reports(
        runs,
        setting_report("mid", "defense", [(0.86, {"gmi": 0.5, "pix": 0.2}, "rejected"),
                                          (0.84, {"gmi": 0.3, "pix": 0.1}, "rejected")], beta=0.01, defense="mid"),
        setting_report("plain_finetune", "control", [(0.90, {"gmi": 0.8, "pix": 0.3}, "rejected"),
                                                     (0.92, {"gmi": 0.7, "pix": 0.3}, "rejected")]),
        setting_report("baseline", "baseline", [(0.90, {"gmi": 0.9, "pix": 0.4}, None),
                                                (0.90, {"gmi": 0.8, "pix": 0.4}, None)]),
        setting_report("calor", "defense", [(0.89, {"gmi": 0.2, "pix": 0.25}, "approved"),
                                            (0.87, {"gmi": 0.1, "pix": 0.2}, "approved")],
                       defense="calor", target_confidence=0.78, phases=["low_rank"]),
    )  # fmt: skip
    return runs


def test_rows_order_and_differences_to_the_control(runs):
    table = comparison(read_setting_reports(runs), GATE)
    assert [r["setting"] for r in table["rows"]] == ["baseline", "plain_finetune", "calor", "mid"]
    calor = table["rows"][2]
    assert calor["natural_accuracy"]["mean"] == pytest.approx(0.88)
    assert calor["worst_case_acc1"]["mean"] == pytest.approx((0.25 + 0.2) / 2)
    assert calor["vs_control"]["natural_accuracy"] == pytest.approx(0.88 - 0.91)
    assert calor["vs_control"]["worst_case_acc1"] == pytest.approx(0.225 - 0.75)
    assert "vs_control" not in table["rows"][1]
    assert calor["defense_facts"] == {"phases": ["low_rank"], "target_confidence": 0.78}
    assert table["rows"][3]["defense_facts"] == {"beta": 0.01}
    assert table["approved_on_every_seed"] == ["calor"] and table["most_private"] == "calor"
    assert table["accuracy_floor"] == pytest.approx(0.90 - 0.05)


def test_missing_baseline_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="baseline.json"):
        read_setting_reports(tmp_path)


def test_broken_report_is_named(runs):
    (runs / "mid.json").write_text("{")
    with pytest.raises(ValueError, match="mid.json"):
        read_setting_reports(runs)


def test_markdown_shows_the_table_numbers(runs):
    table = comparison(read_setting_reports(runs), GATE)
    text = render(table, {"tradeoff": "c/t.png", "heatmap": "c/h.png", "grid_gmi": "c/g.png"}, "make compare")
    calor_line = next(line for line in text.splitlines() if line.startswith("| **calor**"))
    assert "0.880 ± 0.014" in calor_line and "0.23 ± 0.04" in calor_line and "approved ×2" in calor_line
    assert "-0.030" in calor_line and "-0.53" in calor_line
    assert "![trade-off](c/t.png)" in text and "![grid_gmi](c/g.png)" in text
    assert "Approved on every seed: calor" in text and "`make compare`" in text
    assert "| mid | 0.40 ± 0.14 | 0.15 ± 0.07 |" in text
    assert "worst-case leakage (upper bound) ≤ 0.5 × the baseline's" in text
    assert "worst-case Acc@1 (Wilson upper bound) ≤ 0.3" in text and "judged on 95% bounds" in text


def test_figures_are_written_as_png(runs, tmp_path):
    table = comparison(read_setting_reports(runs), GATE)
    tradeoff_plot(tmp_path / "t.png", table)
    attack_heatmap(tmp_path / "h.png", table)
    recs = {"calor": {"images": torch.full((4, 1, 8, 8), 200, dtype=torch.uint8), "labels": torch.arange(4)}}
    side_by_side_grid(tmp_path / "g.png", "gmi", recs, torch.zeros(8, 1, 8, 8, dtype=torch.uint8),
                      torch.arange(4).repeat(2), ["a", "b", "c", "d"])  # fmt: skip
    for name in ("t.png", "h.png", "g.png"):
        with Image.open(tmp_path / name) as image:
            assert image.format == "PNG" and image.width > 200 and image.height > 100
    assert not list(tmp_path.glob("*.tmp"))
