"""plain_finetune: the equal-budget control changes the weights with plain CE, and nothing more."""

from __future__ import annotations

import pytest

from pipeline.config import parse_section
from pipeline.defenses import DefenseData, get_defense
from pipeline.defenses.plain_finetune import PlainFinetuneConfig
from tests.defenses.tiny import changed_parameters, tiny_train


def test_plain_finetune_changes_weights(baseline, data):
    result = get_defense("plain_finetune").apply(
        baseline, PlainFinetuneConfig(train=tiny_train()), DefenseData(data, data)
    )
    assert changed_parameters(baseline, result.model) == {n for n, _ in baseline.named_parameters()}
    assert len(result.history["plain_finetune"]) == 2
    assert result.model.config == baseline.config


def test_label_smoothing_is_refused():
    with pytest.raises(ValueError, match=r"harden\.plain_finetune\.train.*label_smoothing must be 0"):
        parse_section("harden.plain_finetune", {"train": tiny_train(label_smoothing=0.1)}, PlainFinetuneConfig)
