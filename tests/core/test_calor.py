"""CALoR: the CA loss (value, gradient, optimum) and the low-rank head (shapes, rank, wiring)."""

import math

import pytest
import torch

from pipeline.config import TrainConfig
from pipeline.defenses import DefenseData, DefenseKnowledge, checkpoint_knowledge, get_defense
from pipeline.defenses.calor import (
    AUTHORS_TARGET_CONFIDENCE,
    CalorConfig,
    confidence_adaptation_loss,
    optimal_confidence,
    with_low_rank_head,
)
from pipeline.models import HeadConfig, LowRankHead, ModelConfig, create_model
from tests.fixtures_models import tiny_data


def logits_for_true_prob(p: torch.Tensor, classes: int = 10) -> torch.Tensor:
    """Logits whose softmax puts probability p on class 0 and spreads the rest evenly."""
    rest = (1 - p) / (classes - 1)
    logits = torch.log(rest).unsqueeze(-1).repeat(1, classes)
    logits[:, 0] = torch.log(p)
    return logits


def test_ca_loss_value_matches_formula():
    p = torch.tensor([0.3, 0.8, 0.95])
    a, b = 0.25, 4.0
    loss = confidence_adaptation_loss(logits_for_true_prob(p), torch.zeros(3, dtype=torch.long), a, b)
    expected = (a * p**b * torch.log(p)).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_ca_loss_gradient_matches_closed_form():
    """d L / d f_y = a·p^b·(b·log p + 1)·(1 − p) for one sample (calor.md §2)."""
    a, b = 0.25, 5.0
    logits = logits_for_true_prob(torch.tensor([0.6])).requires_grad_(True)
    confidence_adaptation_loss(logits, torch.zeros(1, dtype=torch.long), a, b).backward()
    p = 0.6
    expected = a * p**b * (b * math.log(p) + 1) * (1 - p)
    assert logits.grad[0, 0].item() == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("b", [4.0, 5.0, 8.0])
def test_ca_loss_minimum_is_exp_minus_one_over_b(b):
    p = torch.linspace(0.01, 0.999, 20000)
    losses = 0.25 * p**b * torch.log(p)
    p_star = p[losses.argmin()].item()
    assert p_star == pytest.approx(math.exp(-1 / b), abs=1e-3)
    assert optimal_confidence(b) == pytest.approx(math.exp(-1 / b))


def test_ca_loss_gradient_descent_settles_at_p_star():
    """Minimising the loss over a free logit drives p_y to p*, from above and from below."""
    b = 4.0
    for start in (0.99, 0.5):
        logits = logits_for_true_prob(torch.tensor([start])).requires_grad_(True)
        opt = torch.optim.SGD([logits], lr=50.0)
        for _ in range(3000):
            opt.zero_grad()
            confidence_adaptation_loss(logits, torch.zeros(1, dtype=torch.long), 0.25, b).backward()
            opt.step()
        assert logits.softmax(1)[0, 0].item() == pytest.approx(math.exp(-1 / b), abs=0.01)


def test_low_rank_head_shapes_and_rank_of_jacobian():
    torch.manual_seed(0)
    head = LowRankHead(feature_dim=32, num_classes=10, rank=3).eval()
    features = torch.randn(5, 32)
    assert head(features).shape == (5, 10)
    jacobian = torch.autograd.functional.jacobian(lambda f: head(f.unsqueeze(0)).squeeze(0), features[0])
    assert jacobian.shape == (10, 32)
    assert torch.linalg.matrix_rank(jacobian).item() <= 3
    # and the plain linear head is not rank limited, so the test can fail
    linear = torch.nn.Linear(32, 10)
    assert torch.linalg.matrix_rank(linear.weight).item() == 10


@pytest.mark.parametrize("rank", [0, 33])
def test_low_rank_head_rejects_rank_outside_1_to_d(rank):
    with pytest.raises(ValueError, match="rank"):
        LowRankHead(feature_dim=32, num_classes=10, rank=rank)


@pytest.mark.parametrize(
    "activation,module", [("tanh", torch.nn.Tanh), ("relu", torch.nn.ReLU), ("none", torch.nn.Identity)]
)
def test_low_rank_head_activation_is_configurable(activation, module):
    head = LowRankHead(16, 10, 4, activation)
    assert isinstance(head.activation, module)
    assert [name for name, _ in head.named_children()] == ["norm", "down", "activation", "up"]


def test_with_low_rank_head_keeps_backbone_weights():
    baseline = create_model(ModelConfig(arch="convnet", num_classes=10, width=8))
    hardened = with_low_rank_head(baseline, rank=3, activation="tanh", seed=0)
    assert hardened.config.head == HeadConfig(kind="low_rank", rank=3, activation="tanh")
    before, after = baseline.features.state_dict(), hardened.features.state_dict()
    for name in before:
        assert torch.equal(before[name], after[name]), name


def train_cfg(**kw):
    return TrainConfig(**{"epochs": 2, "batch_size": 16, "lr": 0.01, "seed": 0, **kw})


@pytest.mark.parametrize("low_rank,ca", [(True, True), (True, False), (False, True), (False, False)])
def test_calor_phases_are_switchable(low_rank, ca):
    data = tiny_data()
    baseline = create_model(ModelConfig(arch="convnet", num_classes=4, width=8, image_size=12))
    config = CalorConfig(
        low_rank={"enabled": low_rank, "rank": 2, "train": train_cfg()},
        confidence_adaptation={"enabled": ca, "train": train_cfg(optimizer="sgd")},
    )
    result = get_defense("calor").apply(baseline, config, DefenseData(data, data))
    expected = [p for p, on in (("low_rank", low_rank), ("confidence_adaptation", ca)) if on]
    assert result.report["phases"] == expected
    assert result.report.get("target_confidence") == config.attacker_knowledge().target_confidence  # p* iff CA
    assert list(result.history) == expected
    assert result.model.config.head.kind == ("low_rank" if low_rank else "linear")
    if not low_rank and not ca:  # nothing enabled: weights untouched
        for a, b in zip(baseline.state_dict().values(), result.model.state_dict().values(), strict=True):
            assert torch.equal(a, b)


def test_calor_declares_p_star_to_the_adaptive_attacker_only_when_ca_runs():
    """One method says what an attacker knows; the defense's report and the attack stage both use it."""

    def config(enabled: bool) -> CalorConfig:
        ca = {"enabled": enabled, "b": 2.0, "train": {"epochs": 1}}
        return CalorConfig.model_validate({"low_rank": {"train": {"epochs": 1}}, "confidence_adaptation": ca})

    on, off = config(True), config(False)
    assert on.attacker_knowledge() == DefenseKnowledge(target_confidence=math.exp(-1 / 2.0))
    assert off.attacker_knowledge() == DefenseKnowledge()
    stored = {"harden": {"defense": "calor", "calor": on.model_dump()}}  # what stages/harden saves
    assert checkpoint_knowledge(stored) == on.attacker_knowledge()
    assert checkpoint_knowledge({"baseline": {}}) == DefenseKnowledge()  # an undefended checkpoint
    assert AUTHORS_TARGET_CONFIDENCE == optimal_confidence(8.0)  # what confidence attacks aim at without it
