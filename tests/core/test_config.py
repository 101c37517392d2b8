"""Params validation: every bad key is named; profiles merge and validate."""

from pathlib import Path

import pytest
import yaml

from pipeline.classifier_training import ClassifierStage
from pipeline.config import load_section
from pipeline.defenses import HardenSection
from pipeline.params_schema import validate_params
from pipeline.profiles import apply_overlay, profile_overlay

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path, data) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def default_params() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text())


def test_repo_params_and_smoke_profile_validate(tmp_path):
    validate_params(REPO / "params.yaml")
    out = tmp_path / "smoke.yaml"
    apply_overlay(REPO / "params.yaml", profile_overlay(["smoke"], REPO / "profiles"), out=out)
    merged = yaml.safe_load(out.read_text())
    assert merged["baseline"]["train"]["epochs"] == 1
    assert merged["baseline"]["train"]["optimizer"] == "adam"  # untouched keys survive the overlay


def test_unknown_key_is_named(tmp_path):
    params = default_params()
    params["baseline"]["train"]["epohcs"] = 3
    with pytest.raises(ValueError, match=r"baseline\.train\.epohcs"):
        load_section("baseline", write(tmp_path, params), ClassifierStage)


def test_wrong_type_and_out_of_range_are_named_together(tmp_path):
    params = default_params()
    params["judge"]["train"]["lr"] = "fast"
    params["judge"]["train"]["epochs"] = 0
    with pytest.raises(ValueError) as err:
        load_section("judge", write(tmp_path, params), ClassifierStage)
    assert "judge.train.lr" in str(err.value) and "judge.train.epochs" in str(err.value)


def test_unknown_architecture_is_named(tmp_path):
    params = default_params()
    params["baseline"]["model"]["arch"] = "vgg99"
    with pytest.raises(ValueError, match=r"baseline\.model.*vgg99"):
        load_section("baseline", write(tmp_path, params), ClassifierStage)


def test_defense_settings_are_validated_by_the_defense_schema(tmp_path):
    params = default_params()
    params["harden"]["calor"]["low_rank"]["rank"] = 0
    section = load_section("harden", write(tmp_path, params), HardenSection)
    with pytest.raises(ValueError, match=r"harden\.calor\.low_rank\.rank"):
        section.defense_settings()


def test_unknown_defense_and_unknown_section(tmp_path):
    params = default_params()
    params["harden"]["defense"] = "magic"
    section = load_section("harden", write(tmp_path, params), HardenSection)
    with pytest.raises(KeyError, match="magic"):
        section.defense_settings()
    params = default_params()
    params["bogus"] = {}
    with pytest.raises(ValueError, match="bogus"):
        validate_params(write(tmp_path, params))


def test_missing_params_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_section("baseline", tmp_path / "nope.yaml", ClassifierStage)


def test_validate_params_checks_the_chosen_defense_settings(tmp_path):
    params = default_params()
    params["harden"]["calor"]["confidence_adaptation"]["b"] = -1
    with pytest.raises(ValueError, match=r"harden\.calor\.confidence_adaptation\.b"):
        validate_params(write(tmp_path, params))


@pytest.mark.parametrize(
    ("overlay", "message"),
    [
        ({"attack": {"budget": {"restarts": 0}}}, r"attack with compare\.attack\)[^\n]*\n\s+attack\.budget\.restarts"),
        ({"attack": {"suite": {"x": {"attack": "gmi", "params": {"lr": -1}}}}}, r"attack\.suite\.x: .*lr must be > 0"),
        ({"target_gan": {"plgmi": {"iterations": 0}}}, r"target_gan with compare\.target_gan\)[^\n]*\n\s+target_gan"),
    ],
)
def test_compare_overlays_are_validated_when_params_load_not_when_a_seed_reaches_them(tmp_path, overlay, message):
    params = default_params()
    params["compare"].update(overlay)
    with pytest.raises(ValueError, match=message):
        validate_params(write(tmp_path, params))
