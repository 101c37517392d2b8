"""KED-MI attack: distributional search under a K+1 discriminator prior; refusals and variants."""

from __future__ import annotations

import math

import pytest
import torch

from pipeline.attacks import (
    AttackBudget,
    KEDMIAttack,
    LabelOnlyTarget,
    WhiteBoxTarget,
    attack_defaults,
    create_attack,
    list_attacks,
)
from pipeline.attacks.registry import ATTACKS
from pipeline.metrics import attack_accuracy
from tests.attacks import toy
from tests.target_gan import toy_gan

CLASSES = list(range(toy.NUM_CLASSES))
BUDGET = AttackBudget(steps=10, restarts=3, samples_per_class=2)
VARIANTS = [name for name in list_attacks() if ATTACKS.get(name).cls is KEDMIAttack]


def _run(name, model, prior, images, seed=0, budget=BUDGET, access=WhiteBoxTarget, classes=(0, 1), **params):
    return create_attack(name, **params).run(
        access(model), list(classes), budget, seed=seed, generator=prior, public_images=images
    )


def test_variants_are_registered_as_presets():
    assert set(VARIANTS) == {"kedmi", "kedmi_bpda", "kedmi_confidence", "kedmi_features"}
    assert KEDMIAttack.prior_kind == "kedmi" and KEDMIAttack.uses_prior
    assert attack_defaults("kedmi_confidence")["identity_loss"] == "confidence_aware"
    assert attack_defaults("kedmi_bpda")["bpda"] and attack_defaults("kedmi_features")["feature_weight"] > 0
    assert "Paper:" in KEDMIAttack.__doc__ and "KED-MI" in KEDMIAttack.__doc__


def test_recovers_toy_classes_and_the_untrained_control_does_not():
    images, labels = toy.toy_images(60, seed=0)
    judge = toy.train_classifier(toy.tiny_classifier("judge_net", seed=7, low_rank=False), images, labels, 40, seed=7)
    target = toy.train_classifier(toy.tiny_classifier("convnet", seed=3, low_rank=False), images, labels, 40, seed=3)
    prior = toy_gan.template_kedmi_prior()
    budget = AttackBudget(steps=40, restarts=6, samples_per_class=3)
    result = _run("kedmi", target, prior, None, budget=budget, classes=CLASSES)
    attacked = attack_accuracy(judge, result.images, result.labels, k=(1,))["acc@1"]
    control = []
    for seed in range(3):
        untrained = toy.tiny_classifier("convnet", seed=100 + seed, low_rank=False)
        res = _run("kedmi", untrained, prior, None, seed=seed, budget=budget, classes=CLASSES)
        control.append(attack_accuracy(judge, res.images, res.labels, k=(1,))["acc@1"])
    assert attacked >= 0.75, attacked
    assert sum(control) / 3 <= 0.5, control


def test_the_distribution_is_learned_and_reconstructions_are_its_samples(tiny_target):
    """σ moves away from its start, and with σ pinned near 0 every sample of one distribution is the same image."""
    prior = toy_gan.tiny_kedmi_prior(0)
    result = _run("kedmi", tiny_target, prior, None, budget=AttackBudget(steps=20, restarts=3, samples_per_class=2))
    assert not math.isclose(result.info["sigma_mean"], 1.0, rel_tol=1e-3)
    pinned = _run("kedmi", tiny_target, prior, None, init_log_sigma=-10.0, lr=1e-6, distributions=1)
    torch.testing.assert_close(pinned.images[0], pinned.images[1], atol=1e-4, rtol=0)  # class 0's two samples
    both = AttackBudget(steps=3, restarts=2, samples_per_class=2)  # both candidates kept: one per distribution
    spread = _run("kedmi", tiny_target, prior, None, budget=both, init_log_sigma=-10.0, lr=1e-6, distributions=2)
    same = (pinned.images[0] - pinned.images[1]).abs().max()
    assert (spread.images[0] - spread.images[1]).abs().max() > 100 * same  # two distributions, two images


def test_the_discriminator_prior_steers_the_search(tiny_target):
    """Only the prior term differs between the two runs (identity weight tiny vs default)."""
    prior = toy_gan.tiny_kedmi_prior(0)
    a = _run("kedmi", tiny_target, prior, None, identity_weight=1e-6)
    b = _run("kedmi", tiny_target, prior, None)
    assert not torch.equal(a.images, b.images)


@pytest.mark.parametrize(
    ("prior", "error", "match"),
    [
        (toy.untrained_prior(0), TypeError, "KEDMIPrior"),
        (toy_gan.tiny_conditional_prior(0), TypeError, "KEDMIPrior"),
        (None, TypeError, "'kedmi' prior"),
        (toy_gan.tiny_kedmi_prior(0, num_classes=3), ValueError, "3-class"),
    ],
)
def test_wrong_prior_is_refused(prior, error, match, tiny_target):
    with pytest.raises(error, match=match):
        _run("kedmi", tiny_target, prior, None)


@pytest.mark.parametrize("name", VARIANTS)
def test_variant_contract(name, tiny_target, toy_data):
    prior = toy_gan.tiny_kedmi_prior(0)
    images = toy_data[0]
    before = {k: v.clone() for k, v in tiny_target.state_dict().items()}
    rng = torch.get_rng_state()
    first = _run(name, tiny_target, prior, images, seed=3)
    assert torch.equal(torch.get_rng_state(), rng)
    again = _run(name, tiny_target, prior, images, seed=3)
    other = _run(name, tiny_target, prior, images, seed=4)
    assert first.images.shape == (4, 1, 12, 12) and 0 <= first.images.min() and first.images.max() <= 1
    assert first.labels.tolist() == [0, 0, 1, 1] and ((first.scores >= 0) & (first.scores <= 1)).all()
    assert len(first.history) == BUDGET.steps and all(math.isfinite(v) for v in first.history)
    assert torch.equal(first.images, again.images) and first.history == again.history
    assert not torch.equal(first.images, other.images)
    assert all(torch.equal(before[k], v) for k, v in tiny_target.state_dict().items())
    with pytest.raises(TypeError, match="white_box"):
        _run(name, tiny_target, prior, images, access=LabelOnlyTarget)


def test_loss_decreases(tiny_target):
    history = _run("kedmi", tiny_target, toy_gan.template_kedmi_prior(), None,
                   budget=AttackBudget(steps=30, restarts=3, samples_per_class=1)).history  # fmt: skip
    assert sum(history[-5:]) < sum(history[:5]), history


def test_adaptive_variants_do_what_they_say(tiny_target, toy_data):
    prior = toy_gan.tiny_kedmi_prior(0)
    assert _run("kedmi_bpda", tiny_target, prior, None).info["bpda_replaced_tanh"] == 1
    assert len(_run("kedmi_features", tiny_target, prior, toy_data[0]).info["anchor_labelled_y"]) == 2
    with pytest.raises(ValueError, match="public_images"):
        _run("kedmi_features", tiny_target, prior, None)


@pytest.mark.parametrize(
    ("params", "key"),
    [({"identity_weight": 0.0}, "identity_weight"), ({"init_log_sigma": 5.0}, "init_log_sigma"),
     ({"lr": -1.0}, "lr"), ({"identity_loss": "confidence_aware"}, "target_confidence")],
)  # fmt: skip
def test_bad_params_name_the_param(params, key):
    with pytest.raises(ValueError, match=key):
        create_attack("kedmi", **params)
