"""Identity losses: direction, hand-computed values, and the confidence-aware optimum at p*."""

from __future__ import annotations

import math

import pytest
import torch

from pipeline.attacks import create_identity_loss, list_identity_losses
from pipeline.defenses.calor import AUTHORS_TARGET_CONFIDENCE


def _loss(name: str):
    params = {"target_confidence": 0.8} if name == "confidence_aware" else {}
    return create_identity_loss(name, **params)


@pytest.mark.parametrize("name", ["ce", "logit", "max_margin", "poincare"])
def test_loss_prefers_the_target_class(name):
    logits = torch.tensor([[3.0, 0.0, -1.0], [0.0, 3.0, -1.0]])
    labels = torch.tensor([0, 0])
    loss = _loss(name)(logits, labels)
    assert loss.shape == (2,) and loss[0] < loss[1]


def test_hand_computed_values():
    logits = torch.tensor([[2.0, 5.0, -1.0]])
    labels = torch.tensor([0])
    assert _loss("logit")(logits, labels).item() == pytest.approx(-2.0)
    assert _loss("max_margin")(logits, labels).item() == pytest.approx(3.0)
    expected_ce = -(2.0 - math.log(math.exp(2) + math.exp(5) + math.exp(-1)))
    assert _loss("ce")(logits, labels).item() == pytest.approx(expected_ce, rel=1e-5)


def test_poincare_is_finite_and_shrinks_toward_one_hot():
    labels = torch.tensor([1, 1])
    loss = _loss("poincare")(torch.tensor([[1.0, 1.0, 1.0], [0.0, 50.0, 0.0]]), labels)
    assert torch.isfinite(loss).all() and loss[1] < loss[0]


@pytest.mark.parametrize("p_star", [0.6, 0.8, AUTHORS_TARGET_CONFIDENCE])
def test_confidence_aware_loss_is_minimised_at_p_star(p_star):
    """Sweep p_y over (0, 1) with two classes: the minimum sits at p*, not at p_y → 1."""
    loss_fn = create_identity_loss("confidence_aware", target_confidence=p_star)
    p = torch.linspace(0.01, 0.999, 2000)
    logits = torch.stack([torch.log(p), torch.log1p(-p)], dim=1)  # softmax gives (p, 1 − p)
    loss = loss_fn(logits, torch.zeros(len(p), dtype=torch.long))
    assert p[loss.argmin()].item() == pytest.approx(p_star, abs=1e-3)
    assert loss.min().item() == pytest.approx(0.0, abs=1e-6)
    assert loss[-1] > loss.min()  # saturating the class is penalised


def test_confidence_aware_gradient_vanishes_at_p_star():
    p_star = 0.8
    logits = torch.tensor([[math.log(p_star), math.log(1 - p_star)]], requires_grad=True)
    create_identity_loss("confidence_aware", target_confidence=p_star)(logits, torch.tensor([0])).sum().backward()
    assert logits.grad.abs().max().item() < 1e-6


def test_registry_and_errors_name_the_key():
    assert {"ce", "logit", "max_margin", "poincare", "confidence_aware"} <= set(list_identity_losses())
    with pytest.raises(KeyError, match="no_such_loss"):
        create_identity_loss("no_such_loss")
    with pytest.raises(ValueError, match="target_confidence"):
        create_identity_loss("ce", target_confidence=0.8)
    with pytest.raises(ValueError, match="target_confidence"):
        create_identity_loss("confidence_aware")
    with pytest.raises(ValueError, match="target_confidence"):
        create_identity_loss("confidence_aware", target_confidence=1.0)
