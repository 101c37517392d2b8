"""What a comparison row reads before its first seed: the attack overlay, gate and row reports, up front."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from pipeline.compare.config import SEED_STRIDE, CompareSection
from pipeline.compare.inputs import attacks_by_seed, compare_attack, seed_loop
from pipeline.compare.rows import floor_row
from pipeline.config import load_section
from pipeline.floor import FloorSection
from pipeline.gate import GateSection
from pipeline.suite import AttackSection

REPO = Path(__file__).resolve().parents[2]


def write_params(tmp_path: Path, **compare_changes) -> tuple[Path, dict]:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["compare"].update(compare_changes)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path, params


def test_the_compare_attack_is_validated_once_and_reseeded_per_seed(tmp_path):
    path, params = write_params(tmp_path)
    compare = load_section("compare", path, CompareSection)
    loop = seed_loop(path, compare, inputs=None, out=tmp_path / "out")
    for seed in (0, 2):  # what validating the overlay anew for every seed would give
        assert loop.attack_for_seed(seed) == AttackSection.model_validate(compare.attack_raw(params["attack"], seed))
    assert loop.gate == load_section("gate", path, GateSection)
    assert (loop.baseline_attacks, loop.floor_attacks) == (None, None)  # the baseline and floor rows themselves


def test_a_bad_attack_overlay_is_refused_before_any_seed_trains(tmp_path):
    path, _ = write_params(tmp_path, attack={"budget": {"samples_per_class": 0}})
    compare = load_section("compare", path, CompareSection)
    with pytest.raises(ValueError, match=r"attack with compare\.attack\)[^\n]*\n\s+attack\.budget\.samples_per_class"):
        compare_attack(path, compare)


def test_row_reports_are_keyed_by_compare_seed(tmp_path):
    report = tmp_path / "baseline.json"
    report.write_text(json.dumps({"seeds": [{"seed": 0, "attacks": {"a": 1}}, {"seed": 3, "attacks": {"a": 2}}]}))
    assert attacks_by_seed(report) == {0: {"a": 1}, 3: {"a": 2}}
    assert attacks_by_seed(None) is None


def test_the_floor_row_shifts_its_seed_per_compare_seed(inputs, tmp_path):
    row = floor_row(inputs, FloorSection(kind="untrained", seed=4), seed=2, data=tmp_path)
    assert row.checkpoint_meta == {"floor": {"kind": "untrained", "seed": 4 + 2 * SEED_STRIDE, "train": None}}
    assert row.defense_report == {"defense": "none", "floor": "untrained"} and row.knowledge.attack_params() == {}
