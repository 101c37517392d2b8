"""Every registered defense: a tiny config, a plain Classifier back, a checkpoint that rebuilds it."""

from __future__ import annotations

import copy

import pytest
import torch

from pipeline.checkpoint import load_checkpoint, save_checkpoint
from pipeline.config import parse_section
from pipeline.defenses import DefenseConfig, DefenseData, get_defense, list_defenses
from pipeline.defenses.calor import optimal_confidence
from pipeline.models import Classifier
from tests.defenses.tiny import TINY_CONFIGS, state_equal


def test_every_defense_has_a_tiny_config():
    missing = sorted(set(list_defenses()) - set(TINY_CONFIGS))
    assert not missing, f"add a tiny config for {missing} to tests/defenses/tiny.py"


@pytest.mark.parametrize("name", list_defenses())
def test_defense_returns_a_classifier_that_round_trips(name, baseline, data, tmp_path):
    if name not in TINY_CONFIGS:
        pytest.fail(f"no tiny config for defense {name!r} in tests/defenses/tiny.py")
    spec = get_defense(name)
    config = parse_section(f"harden.{name}", TINY_CONFIGS[name], spec.config_schema)
    before = copy.deepcopy(baseline)
    result = spec.apply(baseline, config, DefenseData(data, data))
    assert state_equal(before, baseline), f"{name} modified the baseline it was given"
    assert type(result.model) is Classifier
    assert result.report and result.history
    path = tmp_path / "model.pt"
    save_checkpoint(path, result.model, {"harden": {"defense": name}})
    loaded, meta = load_checkpoint(path)
    assert meta["model_config"] == result.model.config.to_dict()
    x = torch.rand(5, 1, 12, 12)
    assert torch.equal(loaded(x), result.model.eval()(x))


@pytest.mark.parametrize("name", list_defenses())
def test_defense_declares_what_an_adaptive_attacker_knows(name):
    """CALoR publishes the p* it trains towards; the others publish nothing an attack could aim at."""
    spec = get_defense(name)
    config = parse_section(f"harden.{name}", TINY_CONFIGS[name], spec.config_schema)
    assert isinstance(config, DefenseConfig)
    expected = {"target_confidence": optimal_confidence(config.confidence_adaptation.b)} if name == "calor" else {}
    assert config.attacker_knowledge().attack_params() == expected


def test_calor_is_a_function_of_its_params_not_of_the_global_rng(baseline, data):
    spec = get_defense("calor")
    settings = spec.config_schema.model_validate(TINY_CONFIGS["calor"])
    models = []
    for global_seed in (0, 1):
        torch.manual_seed(global_seed)  # whatever ran before in the process
        models.append(spec.apply(baseline, settings, DefenseData(data, data)).model)
    assert state_equal(*models)
