"""Auto-harden picks the most private (r, b) within the accuracy budget, and never claims a gate pass."""

from __future__ import annotations

import json

import pytest

from pipeline.compare.autoharden import grid_point, merge_seeds, select
from stages import autoharden_select
from tests.compare.fakes import GATE_LIMITS, gate_section, setting_report

GATE = gate_section()


def point(rank: int, b: float, accuracies: list[float], worst: list[float], verdict: str = "rejected") -> dict:
    harden = {"defense": "calor", "calor": {"low_rank": {"rank": rank}, "confidence_adaptation": {"b": b}}}
    rows = [(a, {"gmi": w}, verdict) for a, w in zip(accuracies, worst, strict=True)]
    return setting_report(f"r{rank}-b{b}", "defense", rows, harden=harden)


def test_most_private_within_budget_wins_over_a_more_private_point_outside_it():
    points = [
        grid_point(point(3, 2.0, [0.80, 0.82], [0.10, 0.12])),  # drop 0.09: outside the budget
        grid_point(point(5, 4.0, [0.88, 0.88], [0.40, 0.42])),
        grid_point(point(8, 4.0, [0.89, 0.90], [0.60, 0.62])),
    ]
    result = select(points, GATE)
    assert (result["chosen"]["rank"], result["chosen"]["b"]) == (5, 4.0)
    assert result["within_accuracy_budget"] == [(5, 4.0), (8, 4.0)]
    assert result["chosen_passes_gate"] is False
    assert result["apply"] == "dvc exp run -S harden.calor.low_rank.rank=5 -S harden.calor.confidence_adaptation.b=4.0"


def test_ties_go_to_the_more_accurate_point():
    points = [grid_point(point(5, 2.0, [0.86], [0.3])), grid_point(point(5, 8.0, [0.89], [0.3]))]
    assert select(points, GATE)["chosen"]["b"] == 8.0


def test_gate_pass_needs_every_seed_approved():
    approved = grid_point(point(5, 4.0, [0.9, 0.9], [0.2, 0.2], verdict="approved"))
    assert select([approved], GATE)["chosen_passes_gate"] is True
    mixed = point(5, 4.0, [0.9, 0.9], [0.2, 0.2], verdict="approved")
    mixed["summary"]["gate_verdicts"] = {"approved": 1, "rejected": 1}
    assert select([grid_point(mixed)], GATE)["chosen_passes_gate"] is False


def test_seed_reports_of_one_point_are_merged_before_choosing():
    seed0, seed1 = point(5, 4.0, [0.88], [0.40]), point(5, 4.0, [0.86], [0.20])
    seed1["seeds"][0]["seed"] = 1
    merged = merge_seeds([seed0, point(3, 2.0, [0.9], [0.5]), seed1])
    five = next(grid_point(m) for m in merged if grid_point(m)["rank"] == 5)
    assert five["seeds"] == [0, 1] and five["worst_case_acc1"]["mean"] == pytest.approx(0.30)
    assert five["natural_accuracy"]["std"] == pytest.approx(0.01414, abs=1e-4)
    with pytest.raises(ValueError, match="repeat a seed"):
        merge_seeds([seed0, point(5, 4.0, [0.8], [0.1])])


def test_nothing_within_budget_chooses_nothing():
    result = select([grid_point(point(3, 2.0, [0.5], [0.1]))], GATE)
    assert result["chosen"] is None and result["chosen_passes_gate"] is False and "apply" not in result


def test_stage_writes_choice_markdown_and_heatmap(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    runs.mkdir()
    for rank, b, acc, worst in [(3, 2.0, 0.80, 0.1), (3, 8.0, 0.88, 0.5), (5, 2.0, 0.87, 0.35), (5, 8.0, 0.9, 0.7)]:
        (runs / f"r{rank}-b{b}-s0.json").write_text(json.dumps(point(rank, b, [acc], [worst])))
    params = tmp_path / "params.yaml"
    params.write_text(f"gate: {json.dumps(GATE_LIMITS)}\n")
    out, md, fig = tmp_path / "autoharden.json", tmp_path / "autoharden.md", tmp_path / "autoharden" / "sweep.png"
    autoharden_select.main(["--params", str(params), "--runs", str(runs), "--out", str(out),
                            "--markdown", str(md), "--figure", str(fig)])  # fmt: skip
    result = json.loads(out.read_text())
    assert (result["chosen"]["rank"], result["chosen"]["b"]) == (5, 2.0)
    assert "**Chosen: r = 5, b = 2**" in md.read_text() and "![sweep](autoharden/sweep.png)" in md.read_text()
    assert fig.read_bytes()[:4] == b"\x89PNG"


def test_stage_without_runs_says_what_to_run(tmp_path):
    with pytest.raises(SystemExit, match="dvc repro autoharden/dvc.yaml"):
        autoharden_select.main(["--runs", str(tmp_path), "--out", "x", "--markdown", "y", "--figure", "z"])


def failing(report: dict, check: str) -> dict:
    """``report`` with ``check`` failed on its first seed (as the per-seed gate records carry it)."""
    report["seeds"][0]["gate"] = {"checks": [{"name": check, "status": "fail", "passed": False}]}
    return report


def test_a_point_failing_a_non_privacy_check_is_not_chosen_however_private():
    points = [
        grid_point(failing(point(3, 2.0, [0.88], [0.05]), "min_knn_distance")),  # reconstructions too close
        grid_point(failing(point(5, 4.0, [0.88], [0.40]), "leakage_ratio")),  # privacy checks do not filter
    ]
    result = select(points, GATE)
    assert (result["chosen"]["rank"], result["chosen"]["b"]) == (5, 4.0)
    assert points[0]["failed_checks"] == ["min_knn_distance"]


def test_when_no_point_is_eligible_each_says_why():
    result = select([grid_point(failing(point(3, 2.0, [0.88], [0.05]), "min_knn_distance"))], GATE)
    assert result["chosen"] is None and result["why_none"] == {"r=3, b=2": ["min_knn_distance"]}
