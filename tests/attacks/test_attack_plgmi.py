"""PLG-MI attack: recovers a toy class through a conditional prior, refuses wrong priors, variants."""

from __future__ import annotations

import pytest
import torch

from pipeline.attacks import (
    AttackBudget,
    LabelOnlyTarget,
    PLGMIAttack,
    WhiteBoxTarget,
    attack_defaults,
    create_attack,
    list_attacks,
)
from pipeline.attacks.registry import ATTACKS
from pipeline.metrics import attack_accuracy
from pipeline.target_gan import PLGMISection, train_plgmi
from tests.attacks import toy
from tests.target_gan import toy_gan

CLASSES = list(range(toy.NUM_CLASSES))
BUDGET = AttackBudget(steps=10, restarts=3, samples_per_class=2)
VARIANTS = [name for name in list_attacks() if ATTACKS.get(name).cls is PLGMIAttack]


@pytest.fixture(scope="module")
def toy_task():
    images, labels = toy.toy_images(60, seed=0)
    judge = toy.train_classifier(toy.tiny_classifier("judge_net", seed=7, low_rank=False), images, labels, 40, seed=7)
    target = toy.train_classifier(toy.tiny_classifier("convnet", seed=3, low_rank=False), images, labels, 40, seed=3)
    return images, judge, target


def _run(name, model, prior, images, seed=0, budget=BUDGET, access=WhiteBoxTarget, classes=(0, 1), **params):
    return create_attack(name, **params).run(
        access(model), list(classes), budget, seed=seed, generator=prior, public_images=images
    )


def test_variants_are_registered_as_presets():
    assert set(VARIANTS) == {"plgmi", "plgmi_bpda", "plgmi_confidence", "plgmi_features"}
    assert PLGMIAttack.prior_kind == "plgmi" and PLGMIAttack.uses_prior
    assert attack_defaults("plgmi")["identity_loss"] == "max_margin"
    assert attack_defaults("plgmi_bpda")["bpda"] and attack_defaults("plgmi_features")["feature_weight"] > 0
    assert attack_defaults("plgmi_confidence")["identity_loss"] == "confidence_aware"
    assert create_attack("plgmi", identity_loss="logit").identity_loss == "logit"  # LOMMA's loss as an option
    assert "Paper:" in PLGMIAttack.__doc__ and "PLG-MI" in PLGMIAttack.__doc__


def test_recovers_toy_classes_and_the_untrained_control_does_not(toy_task):
    """Through a y-blind template prior the search alone must find each class; judged, not by the target."""
    _, judge, target = toy_task
    prior = toy_gan.template_conditional_prior()
    budget = AttackBudget(steps=40, restarts=6, samples_per_class=3)
    result = _run("plgmi", target, prior, None, budget=budget, classes=CLASSES)
    attacked = attack_accuracy(judge, result.images, result.labels, k=(1,))["acc@1"]
    control = []
    for seed in range(3):
        untrained = toy.tiny_classifier("convnet", seed=100 + seed, low_rank=False)
        res = _run("plgmi", untrained, prior, None, seed=seed, budget=budget, classes=CLASSES)
        control.append(attack_accuracy(judge, res.images, res.labels, k=(1,))["acc@1"])
    assert attacked >= 0.75, attacked
    assert sum(control) / 3 <= 0.5, control


def test_end_to_end_with_a_gan_trained_against_the_target(toy_task):
    images, judge, target = toy_task
    cfg = PLGMISection(iterations=120, batch_size=32, latent_dim=16, gen_width=8, disc_width=8, top_k=40,
                       alpha=1.0, lr_g=1e-3, lr_d=1e-3)  # fmt: skip
    prior = train_plgmi(target, images, cfg, toy.untrained_prior(0), progress=False).prior
    result = _run("plgmi", target, prior, None, budget=AttackBudget(steps=30, restarts=6, samples_per_class=3),
                  classes=CLASSES)  # fmt: skip
    assert attack_accuracy(judge, result.images, result.labels, k=(1,))["acc@1"] >= 0.5  # chance is 0.25


@pytest.mark.parametrize(
    ("prior", "error", "match"),
    [
        (toy.untrained_prior(0), TypeError, "ConditionalPrior"),
        (toy_gan.tiny_kedmi_prior(0), TypeError, "ConditionalPrior"),
        (None, TypeError, "'plgmi' prior"),
        (toy_gan.tiny_conditional_prior(0, num_classes=6), ValueError, "6-class"),
    ],
)
def test_wrong_prior_is_refused(prior, error, match, tiny_target):
    with pytest.raises(error, match=match):
        _run("plgmi", tiny_target, prior, None)


def test_generic_attack_refuses_a_target_specific_prior(tiny_target):
    with pytest.raises(TypeError, match="ImagePrior"):
        _run("gmi", tiny_target, toy_gan.tiny_conditional_prior(0), None)


def test_wrong_image_shape_is_refused(tiny_target):
    prior = toy_gan.tiny_conditional_prior(0)
    object.__setattr__(prior, "config", toy.tiny_prior_config(image_size=16))
    with pytest.raises(ValueError, match="shape"):
        _run("plgmi", tiny_target, prior, None)


@pytest.mark.parametrize("name", VARIANTS)
def test_variant_contract(name, tiny_target, toy_data):
    """Shapes, range, class-major labels, scores in [0, 1], determinism, RNG and target untouched."""
    prior = toy_gan.tiny_conditional_prior(0)
    images = toy_data[0]
    before = {k: v.clone() for k, v in tiny_target.state_dict().items()}
    rng = torch.get_rng_state()
    first = _run(name, tiny_target, prior, images, seed=3)
    assert torch.equal(torch.get_rng_state(), rng)
    again = _run(name, tiny_target, prior, images, seed=3)
    other = _run(name, tiny_target, prior, images, seed=4)
    assert first.images.shape == (4, 1, 12, 12) and 0 <= first.images.min() and first.images.max() <= 1
    assert first.labels.tolist() == [0, 0, 1, 1] and ((first.scores >= 0) & (first.scores <= 1)).all()
    assert len(first.history) == BUDGET.steps
    assert torch.equal(first.images, again.images) and first.history == again.history
    assert not torch.equal(first.images, other.images)
    assert all(torch.equal(before[k], v) for k, v in tiny_target.state_dict().items())
    with pytest.raises(TypeError, match="white_box"):
        _run(name, tiny_target, prior, images, access=LabelOnlyTarget)


def test_loss_decreases(tiny_target):
    history = _run("plgmi", tiny_target, toy_gan.template_conditional_prior(), None,
                   budget=AttackBudget(steps=30, restarts=3, samples_per_class=1)).history  # fmt: skip
    assert sum(history[-5:]) < sum(history[:5]), history


def test_adaptive_variants_do_what_they_say(tiny_target, toy_data):
    prior = toy_gan.tiny_conditional_prior(0)
    assert _run("plgmi_bpda", tiny_target, prior, None).info["bpda_replaced_tanh"] == 1
    assert len(_run("plgmi_features", tiny_target, prior, toy_data[0]).info["anchor_labelled_y"]) == 2
    with pytest.raises(ValueError, match="public_images"):
        _run("plgmi_features", tiny_target, prior, None)


@pytest.mark.parametrize(
    ("params", "key"),
    [({"lr": 0.0}, "lr"), ({"views": 0}, "views"), ({"latent_bound": -1.0}, "latent_bound"),
     ({"identity_loss": "nope"}, "nope"), ({"target_confidence": 0.8}, "target_confidence")],
)  # fmt: skip
def test_bad_params_name_the_param(params, key):
    with pytest.raises(ValueError, match=key):
        create_attack("plgmi", **params)
