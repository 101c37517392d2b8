"""MID / VIB: the KL term is real and weighted by β, sampling in train mode, the mean in eval mode."""

from __future__ import annotations

import pytest
import torch

from pipeline.defenses import DefenseData, get_defense
from pipeline.defenses.common import StepMeans
from pipeline.defenses.mid import MidConfig, PosteriorProbe, mean_kl, mid_loss_fn
from pipeline.models.vib_head import VIBHead, kl_to_standard_normal
from tests.defenses.tiny import tiny_train


def test_kl_matches_torch_distributions_and_is_zero_only_at_the_prior():
    mu, std = torch.randn(6, 5), torch.rand(6, 5) + 0.1
    q = torch.distributions.Normal(mu, std)
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(std))
    expected = torch.distributions.kl_divergence(q, p).sum(1).mean()
    assert kl_to_standard_normal(mu, std).item() == pytest.approx(expected.item(), rel=1e-5)
    assert kl_to_standard_normal(torch.zeros(3, 4), torch.ones(3, 4)).item() == pytest.approx(0.0, abs=1e-7)


def test_vib_head_samples_in_train_mode_and_uses_the_mean_in_eval_mode():
    torch.manual_seed(0)
    head = VIBHead(feature_dim=16, num_classes=3, bottleneck_dim=4)
    with torch.no_grad():
        head.encoder.bias[4:] = 6.0  # σ = softplus(6 − 5) ≈ 1.3: noise clearly visible
    f = torch.randn(5, 16)
    head.train()
    assert not torch.equal(head(f), head(f))
    head.eval()
    mu, _ = VIBHead.posterior(head.encoder(f))
    assert torch.equal(head(f), head(f))
    assert torch.equal(head(f), head.classifier(mu))


def test_loss_is_ce_plus_beta_kl_of_the_batch_just_seen():
    torch.manual_seed(0)
    head = VIBHead(8, 3, 2)
    probe, meter = PosteriorProbe(head), StepMeans()
    logits, y = head(torch.randn(4, 8)), torch.tensor([0, 1, 2, 0])
    loss = mid_loss_fn(probe, beta=0.5, meter=meter)(logits, y)
    kl = kl_to_standard_normal(*probe.posterior)
    assert kl.item() > 0
    assert loss.item() == pytest.approx((torch.nn.functional.cross_entropy(logits, y) + 0.5 * kl).item(), rel=1e-6)
    assert loss.requires_grad and head.encoder.weight in dict(head.named_parameters()).values()
    probe.close()


def run_mid(baseline, data, beta):
    config = MidConfig(beta=beta, train=tiny_train())
    return get_defense("mid").apply(baseline, config, DefenseData(data, data))


def test_mid_reports_a_positive_kl_and_beta_controls_it(baseline, data):
    weak, strong = run_mid(baseline, data, 0.003), run_mid(baseline, data, 0.5)
    for result in (weak, strong):
        assert result.report["train_kl"] > 0 and result.report["train_kl_term"] > 0
        assert all(row["train_kl"] > 0 for row in result.history["mid"])
        assert isinstance(result.model.head, VIBHead) and result.model.config.head.kind == "vib"
    assert strong.report["train_kl"] < weak.report["train_kl"]  # the penalty is actually applied
    assert weak.report["bottleneck_dim"] == baseline.feature_dim // 2
    assert weak.report["train_kl"] == pytest.approx(mean_kl(weak.model, data))


def test_released_model_is_deterministic(baseline, data):
    model = run_mid(baseline, data, 0.003).model
    assert not model.training
    x = torch.rand(4, 1, 12, 12)
    assert torch.equal(model(x), model(x))
