"""Params strictness: repeated keys, enums, finite floats and no silent coercion, each named by its key."""

from __future__ import annotations

import math
import typing
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from pipeline.classifier_training import ClassifierStage
from pipeline.compare.config import parse_overrides
from pipeline.config import deep_merge, load_section, read_params
from pipeline.data.config import DataSection
from pipeline.defenses import get_defense, list_defenses
from pipeline.models.heads import ACTIVATIONS, HeadActivation
from pipeline.params_schema import validate_params
from pipeline.suite import AttackSection
from pipeline.yaml_strict import DuplicateKeyError, load_yaml

REPO = Path(__file__).resolve().parents[2]
PROFILES = sorted((REPO / "profiles").glob("*.yaml"))


def default_params() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text())


def write(tmp_path: Path, data: dict, name: str = "params.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def set_key(params: dict, dotted: str, value) -> dict:
    *parents, last = dotted.split(".")
    node = params
    for part in parents:
        node = node[part]
    node[last] = value
    return params


# -- duplicate keys ------------------------------------------------------------------------------


def test_a_repeated_key_in_params_is_an_error_naming_the_dotted_key_file_and_lines(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("baseline:\n  train:\n    epochs: 3\n    lr: 0.1\n    lr: 0.2\n")
    with pytest.raises(DuplicateKeyError) as err:
        read_params(path)
    assert str(err.value) == f"{path}:5: duplicate key 'baseline.train.lr' (first set at line 4)"


def test_a_repeated_top_level_section_is_an_error_not_the_last_one_wins(tmp_path):
    text = (REPO / "params.yaml").read_text() + "\nmlflow:\n  experiment: elsewhere\n"
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=r"params\.yaml:\d+: duplicate key 'mlflow' \(first set at line \d+\)"):
        validate_params(path)


def test_a_repeated_key_in_a_profile_names_the_profile(tmp_path):
    profile = tmp_path / "profiles" / "fast.yaml"
    profile.parent.mkdir()
    profile.write_text("attack:\n  suite:\n    gmi: {budget: {steps: 3, steps: 4}}\n")
    with pytest.raises(DuplicateKeyError, match=r"fast\.yaml:3: duplicate key 'attack\.suite\.gmi\.budget\.steps'"):
        read_params(profile)


def test_repeated_keys_inside_lists_and_override_values_are_named():
    with pytest.raises(DuplicateKeyError, match=r"x\.yaml:3: duplicate key 'runs\.1\.seed'"):
        load_yaml("runs:\n- {seed: 1}\n- {seed: 2, seed: 3}\n", "x.yaml")
    with pytest.raises(DuplicateKeyError, match=r"duplicate key 'rank'"):
        parse_overrides(["calor.low_rank={rank: 3, rank: 5}"])


def test_anchors_merge_keys_and_aliases_still_load():
    text = "base: &b {lr: 0.1, epochs: 2}\nrun:\n  <<: *b\n  lr: 0.2\nagain: *b\n"
    assert load_yaml(text) == yaml.safe_load(text)
    assert load_yaml(text)["run"] == {"lr": 0.2, "epochs": 2}


# -- the repository's own params ------------------------------------------------------------------


def test_repo_params_have_no_repeated_keys_and_load_as_plain_yaml_does():
    for path in [REPO / "params.yaml", *PROFILES]:
        assert read_params(path) == yaml.safe_load(path.read_text()), path


@pytest.mark.parametrize("profile", [p.stem for p in PROFILES])
def test_params_with_each_profile_validate_strictly(profile, tmp_path):
    merged = deep_merge(read_params(REPO / "params.yaml"), read_params(REPO / "profiles" / f"{profile}.yaml"))
    parsed = validate_params(write(tmp_path, merged))
    parsed["harden"].defense_settings()
    for setting in parsed["compare"].settings.values():
        setting.harden_section(1).defense_settings()  # every comparison setting, as its stage reads it


def test_smoke_release_on_top_of_smoke_validates(tmp_path):
    merged = read_params(REPO / "params.yaml")
    for name in ("smoke", "smoke_release"):
        merged = deep_merge(merged, read_params(REPO / "profiles" / f"{name}.yaml"))
    validate_params(write(tmp_path, merged))


# -- enums ----------------------------------------------------------------------------------------


def test_head_activation_choices_are_exactly_the_registered_activations():
    assert sorted(typing.get_args(HeadActivation)) == ACTIVATIONS.names()


def test_unknown_activation_is_refused_when_params_load(tmp_path):
    params = set_key(default_params(), "harden.calor.low_rank.activation", "sigmoid")
    with pytest.raises(ValueError) as err:
        validate_params(write(tmp_path, params))
    message = str(err.value)
    assert "harden.calor.low_rank.activation" in message and "'tanh', 'relu' or 'none'" in message
    assert "'sigmoid'" in message


# -- finite floats --------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize(
    "key",
    [
        "harden.calor.confidence_adaptation.b",
        "harden.calor.confidence_adaptation.a",
        "gate.max_leakage_ratio",
        "gate.min_knn_distance",
        "baseline.train.lr",
        "export.parity.atol",
        "serve.body_timeout_s",
    ],
)
def test_nan_and_inf_are_refused_with_the_dotted_key(key, value, tmp_path):
    params = set_key(default_params(), key, value)
    with pytest.raises(ValueError) as err:
        validate_params(write(tmp_path, params))
    assert f"  {key}: Input should be a finite number" in str(err.value)


def _models_reachable(model: type[BaseModel]) -> set[type[BaseModel]]:
    found = {model}
    for field in model.model_fields.values():
        for arg in [field.annotation, *typing.get_args(field.annotation)]:
            for inner in [arg, *typing.get_args(arg)]:
                if isinstance(inner, type) and issubclass(inner, BaseModel) and inner not in found:
                    found |= _models_reachable(inner)
    return found


def test_every_params_model_is_strict_and_finite():
    from pipeline.params_schema import SECTIONS

    roots = [*SECTIONS.values(), *(get_defense(name).config_schema for name in list_defenses())]
    models = set().union(*(_models_reachable(root) for root in roots))
    lax = sorted(
        m.__name__ for m in models if m.__name__ != "HardenSection"  # its only own field is `defense: str`
        if not (m.model_config.get("strict") and m.model_config.get("allow_inf_nan") is False)
    )  # fmt: skip
    assert not lax, f"params models without strict/allow_inf_nan=False: {lax}"


def test_attack_params_must_be_finite_and_of_the_attacks_types(tmp_path):
    params = default_params()
    params["attack"]["suite"] = {"x": {"attack": "gmi", "params": {"lr": math.inf, "bpda": 1}}}
    with pytest.raises(ValueError) as err:
        load_section("attack", write(tmp_path, params), AttackSection)
    message = str(err.value)
    assert "attack.suite.x: Value error, params." in message
    assert "params.lr: Input should be a finite number (got inf)" in message
    assert "params.bpda: Input should be a valid boolean (got 1)" in message


# -- no silent coercion ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key,value,message",
    [
        ("baseline.train.epochs", True, "Input should be a valid integer"),
        ("baseline.train.lr", "0.1", "Input should be a valid number"),
        ("baseline.train.lr", True, "Input should be a valid number"),
        ("baseline.train.epochs", 3.0, "Input should be a valid integer"),
        ("baseline.model.width", "32", "Input should be a valid integer"),
        ("harden.calor.low_rank.enabled", 1, "Input should be a valid boolean"),
        ("harden.calor.low_rank.enabled", "yes", "Input should be a valid boolean"),
        ("split.private_classes", [0, True], "Input should be a valid integer"),
        ("mlflow.experiment", 7, "Input should be a valid string"),
    ],
)
def test_values_of_the_wrong_type_are_not_coerced(key, value, message, tmp_path):
    params = set_key(default_params(), key, value)
    with pytest.raises(ValueError) as err:
        validate_params(write(tmp_path, params))
    dotted = key + (".1" if key == "split.private_classes" else "")
    assert f"  {dotted}: {message}" in str(err.value)


def test_a_yaml_int_still_fills_a_float_field(tmp_path):
    params = set_key(default_params(), "baseline.train.lr", 1)
    params = set_key(params, "harden.calor.confidence_adaptation.b", 8)
    path = write(tmp_path, params)
    assert "lr: 1\n" in path.read_text()  # an int in the YAML, not 1.0
    lr = load_section("baseline", path, ClassifierStage).train.lr
    assert lr == 1.0 and type(lr) is float
    b = validate_params(path)["harden"].defense_settings().confidence_adaptation.b
    assert b == 8.0 and type(b) is float


@pytest.mark.parametrize("value", [True, 3.0])
def test_image_channels_refuse_true_and_floats(value, tmp_path):
    params = default_params()
    params["data"] = {"source": "image_folder", "image_folder": {"root": "imgs", "channels": value}}
    with pytest.raises(ValueError, match=rf"data\.image_folder\.channels: Value error, expected an integer.*{value!r}"):
        load_section("data", write(tmp_path, params), DataSection)
