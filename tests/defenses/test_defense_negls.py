"""NegLS: the sign convention, the warm-up-then-ramp schedule actually used, and refused settings."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pipeline.config import parse_section
from pipeline.defenses import DefenseData, get_defense
from pipeline.defenses.negls import AlphaSchedule, NegLSConfig, smoothed_cross_entropy
from tests.defenses.tiny import tiny_train


@pytest.mark.parametrize("alpha", [0.0, 0.1, 0.3])
def test_non_negative_alpha_matches_torch_label_smoothing(alpha):
    """Same convention as torch's label_smoothing, so the sign of α means what the paper means."""
    torch.manual_seed(0)
    logits, y = torch.randn(8, 5), torch.randint(0, 5, (8,))
    expected = F.cross_entropy(logits, y, label_smoothing=alpha)
    assert smoothed_cross_entropy(logits, y, alpha).item() == pytest.approx(expected.item(), rel=1e-6)


def test_negative_alpha_pushes_non_target_logits_down_harder_than_ce():
    logits = torch.zeros(1, 4, requires_grad=True)
    smoothed_cross_entropy(logits, torch.tensor([0]), -0.05).backward()
    negls_grad = logits.grad[0, 1:].clone()
    logits.grad = None
    F.cross_entropy(logits, torch.tensor([0])).backward()
    assert (negls_grad > logits.grad[0, 1:]).all()  # larger positive gradient → descent lowers them more


def test_schedule_is_zero_during_warmup_then_ramps_to_alpha():
    schedule = AlphaSchedule(-0.05, total_steps=100, warmup_fraction=0.5, ramp_fraction=0.25)
    values = [schedule(s) for s in range(100)]
    assert all(v == 0.0 for v in values[:50])
    assert all(v < 0 for v in values[50:])
    assert values[50:75] == sorted(values[50:75], reverse=True)  # monotone ramp toward α
    assert values[74] == pytest.approx(-0.05) and all(v == pytest.approx(-0.05) for v in values[75:])


def test_defense_reports_the_alpha_actually_used_per_epoch(baseline, data):
    result = get_defense("negls").apply(baseline, NegLSConfig(train=tiny_train()), DefenseData(data, data))
    first, second = result.report["alpha_schedule"]
    assert first["epoch"] == 1 and first["alpha_first"] == first["alpha_last"] == 0.0  # warm-up: plain CE
    assert second["alpha_first"] < 0 and second["alpha_last"] == pytest.approx(-0.05)
    assert [row["ls_alpha_mean"] for row in result.history["negls"]] == [0.0, second["alpha_mean"]]


def test_positive_alpha_is_refused_because_it_helps_attackers():
    with pytest.raises(ValueError, match=r"harden\.negls\.alpha.*positive label smoothing helps model-inversion"):
        parse_section("harden.negls", {"alpha": 0.1, "train": tiny_train()}, NegLSConfig)
    with pytest.raises(ValueError, match="plain_finetune"):
        parse_section("harden.negls", {"alpha": 0.0, "train": tiny_train()}, NegLSConfig)


def test_a_warmup_covering_the_whole_run_is_refused(baseline, data):
    config = NegLSConfig(warmup_fraction=0.95, ramp_fraction=0.0, train=tiny_train(epochs=1))
    with pytest.raises(ValueError, match="warmup_fraction"):
        get_defense("negls").apply(baseline, config, DefenseData(data, data))
