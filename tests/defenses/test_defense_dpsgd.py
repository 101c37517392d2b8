"""DP-SGD: per-sample clipping bounds the update, noise is really added, ε is reported and sane."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from pipeline.defenses import DefenseData, get_defense
from pipeline.defenses.dpsgd import DpsgdConfig, dp_epsilon, freeze_batchnorm, private_gradient
from pipeline.models import ModelConfig, create_model
from tests.defenses.tiny import state_equal, tiny_train


def model_and_batch():
    torch.manual_seed(0)
    model = create_model(ModelConfig(arch="convnet", num_classes=4, width=8, image_size=12)).train()
    freeze_batchnorm(model)
    return model, torch.rand(8, 1, 12, 12), torch.randint(0, 4, (8,))


def flat(grads: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat([g.flatten() for g in grads.values()])


def test_per_sample_norms_match_autograd_and_clipping_bounds_the_mean():
    model, x, y = model_and_batch()
    grads, losses, norms = private_gradient(model, x, y, 1e-3, 0.0, torch.Generator().manual_seed(0))
    model.zero_grad()
    F.cross_entropy(model(x[:1]), y[:1]).backward()
    manual = torch.sqrt(sum(p.grad.pow(2).sum() for p in model.parameters()))
    assert norms[0].item() == pytest.approx(manual.item(), rel=1e-4)
    assert (norms > 1e-3).all()  # every sample clipped at C = 1e-3 …
    assert flat(grads).norm().item() <= 1e-3 * (1 + 1e-4)  # … so their mean cannot exceed C
    assert losses.shape == (8,)


def test_noise_is_added_with_std_sigma_c_over_b():
    model, x, y = model_and_batch()
    clean, _, _ = private_gradient(model, x, y, 1.0, 0.0, torch.Generator().manual_seed(0))
    a, _, _ = private_gradient(model, x, y, 1.0, 2.0, torch.Generator().manual_seed(0))
    b, _, _ = private_gradient(model, x, y, 1.0, 2.0, torch.Generator().manual_seed(1))
    again, _, _ = private_gradient(model, x, y, 1.0, 2.0, torch.Generator().manual_seed(0))
    assert torch.equal(flat(a), flat(again)) and not torch.equal(flat(a), flat(b))
    noise = (flat(a) - flat(clean)) * x.shape[0]
    assert noise.std().item() == pytest.approx(2.0 * 1.0, rel=0.05)  # σ·C, thousands of coordinates


def run(baseline, data, **kw):
    config = DpsgdConfig(train=tiny_train(optimizer="sgd", lr=0.1), **kw)
    return get_defense("dpsgd").apply(baseline, config, DefenseData(data, data))


def test_noise_seed_changes_the_model_and_the_report_has_the_privacy_parameters(baseline, data):
    a, b, a_again = (
        run(baseline, data, noise_seed=0),
        run(baseline, data, noise_seed=1),
        run(baseline, data, noise_seed=0),
    )
    assert state_equal(a.model, a_again.model)  # deterministic for a seed …
    assert not torch.equal(a.model.head.weight, b.model.head.weight)  # … so only the noise differs
    report = a.report
    assert 0 < report["epsilon"] < math.inf and report["delta"] == 1e-5
    assert report["noise_multiplier"] == 1.0 and report["max_grad_norm"] == 1.0
    assert report["steps"] == 8 and report["sampling_rate"] == 0.25
    assert "not (eps, delta)-DP" in report["epsilon_scope"]
    assert all(0 <= row["train_clipped_fraction"] <= 1 for row in a.history["dpsgd"])


def test_batchnorm_statistics_are_frozen(baseline, data):
    model = run(baseline, data).model
    for (name, before), (_, after) in zip(baseline.named_buffers(), model.named_buffers(), strict=True):
        assert torch.equal(before, after), name


def test_delta_must_be_below_one_over_n(baseline, data):
    with pytest.raises(ValueError, match=r"harden\.dpsgd\.delta must be < 1/N"):
        run(baseline, data, delta=0.1)


def test_epsilon_grows_with_steps_and_shrinks_with_noise():
    base = dp_epsilon(0.01, 1.0, 1000, 1e-5)[0]
    assert dp_epsilon(0.01, 1.0, 4000, 1e-5)[0] > base > dp_epsilon(0.01, 2.0, 1000, 1e-5)[0] > 0


@pytest.mark.parametrize("q,sigma,steps", [(0.25, 1.0, 8), (0.01, 1.1, 10_000), (256 / 60_000, 1.0, 2340)])
def test_epsilon_agrees_with_opacus(q, sigma, steps):
    """Integer orders only: never below Opacus's ε (so never optimistic), at most a few % above."""
    accountants = pytest.importorskip("opacus.accountants")
    accountant = accountants.RDPAccountant()
    accountant.history = [(sigma, q, steps)]
    reference = accountant.get_epsilon(1e-5)
    ours = dp_epsilon(q, sigma, steps, 1e-5)[0]
    assert reference * (1 - 1e-9) <= ours <= reference * 1.06
