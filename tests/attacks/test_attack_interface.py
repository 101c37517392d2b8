"""Every registered attack, on a tiny model and tiny generator: shapes, determinism, refusals."""

from __future__ import annotations

import pytest
import torch

from pipeline.attacks import (
    Access,
    AttackBudget,
    AttackResult,
    LabelOnlyTarget,
    WhiteBoxTarget,
    create_attack,
    list_attacks,
)
from pipeline.attacks.registry import ATTACKS
from tests.target_gan import toy_gan

BUDGET = AttackBudget(steps=12, restarts=3, samples_per_class=2)
WHITE_BOX_ATTACKS = [name for name in list_attacks() if ATTACKS.get(name).cls.requires is Access.WHITE_BOX]


# The untrained tiny target-specific GANs make near-constant images (a flat loss); the template
# priors vary with z like the generic tiny prior's losses do with its discriminator term.
TARGET_SPECIFIC_PRIORS = {"plgmi": toy_gan.template_conditional_prior, "kedmi": toy_gan.template_kedmi_prior}


def _prior_for(name, generic_prior):
    """The prior of the attack's kind: the generic tiny GAN, or a template target-specific one."""
    kind = ATTACKS.get(name).cls.prior_kind
    return TARGET_SPECIFIC_PRIORS[kind]() if kind in TARGET_SPECIFIC_PRIORS else generic_prior


def _run(name, target_model, prior, classes, toy_data, seed=0, budget=BUDGET, access=WhiteBoxTarget, **params):
    attack = create_attack(name, **params)
    return attack.run(
        access(target_model), classes, budget, seed=seed, generator=_prior_for(name, prior), public_images=toy_data[0]
    )


def test_registry_holds_every_attack():
    expected = {"pixel", "deepinversion", "gmi", "gmi_confidence", "gmi_bpda", "gmi_features", "brep"}
    assert expected <= set(list_attacks())


@pytest.mark.parametrize("name", list_attacks())
def test_result_shapes_range_and_scores(name, tiny_target, tiny_prior, reachable_classes, toy_data):
    result = _run(name, tiny_target, tiny_prior, reachable_classes, toy_data)
    assert isinstance(result, AttackResult)
    n = len(reachable_classes) * BUDGET.samples_per_class
    assert result.images.shape == (n, 1, 12, 12)
    assert result.images.min() >= 0 and result.images.max() <= 1
    assert result.labels.tolist() == [c for c in reachable_classes for _ in range(BUDGET.samples_per_class)]
    assert result.scores.shape == (n,) and ((result.scores >= 0) & (result.scores <= 1)).all()
    assert len(result.history) == BUDGET.steps and all(torch.isfinite(torch.tensor(result.history)))
    assert result.seconds > 0


@pytest.mark.parametrize("name", list_attacks())
def test_loss_decreases(name, tiny_target, tiny_prior, reachable_classes, toy_data):
    budget = AttackBudget(steps=30, restarts=3, samples_per_class=1)
    history = _run(name, tiny_target, tiny_prior, reachable_classes, toy_data, budget=budget).history
    assert sum(history[-5:]) / 5 < sum(history[:5]) / 5, history


@pytest.mark.parametrize("name", list_attacks())
def test_same_seed_same_result_different_seed_different(name, tiny_target, tiny_prior, reachable_classes, toy_data):
    rng_state = torch.get_rng_state()
    first = _run(name, tiny_target, tiny_prior, reachable_classes, toy_data, seed=3)
    assert torch.equal(torch.get_rng_state(), rng_state), "run() must not consume the caller's RNG"
    again = _run(name, tiny_target, tiny_prior, reachable_classes, toy_data, seed=3)
    other = _run(name, tiny_target, tiny_prior, reachable_classes, toy_data, seed=4)
    assert torch.equal(first.images, again.images) and first.history == again.history
    assert not torch.equal(first.images, other.images)


@pytest.mark.parametrize("name", list_attacks())
def test_target_model_is_left_untouched(name, tiny_target, tiny_prior, reachable_classes, toy_data):
    before = {k: v.clone() for k, v in tiny_target.state_dict().items()}
    _run(name, tiny_target, tiny_prior, reachable_classes, toy_data)
    after = tiny_target.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in tiny_target.parameters())


@pytest.mark.parametrize("name", WHITE_BOX_ATTACKS)
def test_white_box_attack_refuses_label_only_target(name, tiny_target, tiny_prior, toy_data):
    with pytest.raises(TypeError, match="white_box"):
        _run(name, tiny_target, tiny_prior, [0], toy_data, access=LabelOnlyTarget)


def test_label_only_target_exposes_labels_only(tiny_target):
    target = LabelOnlyTarget(tiny_target)
    for attribute in ("logits", "features", "head", "model", "probabilities"):
        assert not hasattr(target, attribute)
    labels = target.predict_labels(torch.rand(5, 1, 12, 12))
    assert labels.shape == (5,) and labels.dtype == torch.int64 and target.queries == 5


def test_label_only_attack_accepts_white_box_target(tiny_target, tiny_prior, reachable_classes, toy_data):
    result = _run("brep", tiny_target, tiny_prior, reachable_classes, toy_data, access=WhiteBoxTarget)
    assert result.info["queries"] > 0


@pytest.mark.parametrize("name", list_attacks())
def test_raw_model_is_refused(name, tiny_target, tiny_prior):
    with pytest.raises(TypeError, match="WhiteBoxTarget or LabelOnlyTarget"):
        create_attack(name).run(tiny_target, [0], BUDGET, seed=0, generator=tiny_prior)


@pytest.mark.parametrize("classes", [[4], [-1], [0, 0], []])
def test_classes_out_of_range_are_refused(classes, tiny_target, tiny_prior):
    with pytest.raises(ValueError, match="classes"):
        create_attack("gmi").run(WhiteBoxTarget(tiny_target), classes, BUDGET, seed=0, generator=tiny_prior)


def test_unknown_attack_lists_known_ones():
    with pytest.raises(KeyError, match="gmi"):
        create_attack("no_such_attack")


@pytest.mark.parametrize("name", list_attacks())
def test_unknown_param_is_named(name):
    with pytest.raises(ValueError, match="not_a_param"):
        create_attack(name, not_a_param=1)


@pytest.mark.parametrize(
    ("name", "params", "key"),
    [
        ("gmi", {"identity_loss": "nope"}, "nope"),
        ("pixel", {"identity_loss": "nope"}, "nope"),
        ("gmi", {"lr": 0.0}, "lr"),
        ("gmi", {"latent_bound": -1.0}, "latent_bound"),
        ("gmi", {"target_confidence": 0.8}, "target_confidence"),
        ("gmi", {"identity_loss": "confidence_aware"}, "target_confidence"),
        ("gmi_confidence", {"target_confidence": 1.5}, "target_confidence"),
        ("deepinversion", {"bn_weight": -1.0}, "bn_weight"),
        ("brep", {"radius_growth": 1.0}, "radius_growth"),
        ("brep", {"sphere_points": 0}, "sphere_points"),
        ("gmi", {"score_views": 0}, "score_views"),
    ],
)
def test_bad_param_values_name_the_param(name, params, key):
    with pytest.raises(ValueError, match=key):
        create_attack(name, **params)


@pytest.mark.parametrize(
    ("budget", "key"),
    [
        ({"steps": 0, "restarts": 2, "samples_per_class": 1}, "steps"),
        ({"steps": 5, "restarts": 0, "samples_per_class": 1}, "restarts"),
        ({"steps": 5, "restarts": 2, "samples_per_class": 0}, "samples_per_class"),
        ({"steps": 5, "restarts": 2, "samples_per_class": 3}, "samples_per_class"),
    ],
)
def test_budget_is_validated(budget, key):
    with pytest.raises(ValueError, match=key):
        AttackBudget(**budget)


def test_gan_attack_needs_a_prior(tiny_target):
    with pytest.raises(TypeError, match="generator"):
        create_attack("gmi").run(WhiteBoxTarget(tiny_target), [0], BUDGET, seed=0, generator=None)


def test_feature_attack_needs_public_images(tiny_target, tiny_prior):
    attack = create_attack("gmi_features")
    assert attack.uses_public_images
    with pytest.raises(ValueError, match="public_images"):
        attack.run(WhiteBoxTarget(tiny_target), [0], BUDGET, seed=0, generator=tiny_prior)


def test_feature_attack_reports_anchor_support(tiny_target, tiny_prior, reachable_classes, toy_data):
    result = _run("gmi_features", tiny_target, tiny_prior, reachable_classes, toy_data)
    assert len(result.info["anchor_labelled_y"]) == len(reachable_classes)


def test_bpda_attack_patches_the_tanh(tiny_target, tiny_prior, reachable_classes, toy_data):
    assert _run("gmi_bpda", tiny_target, tiny_prior, reachable_classes, toy_data).info["bpda_replaced_tanh"] == 1


def test_deepinversion_hooks_batchnorm_layers(tiny_target, tiny_prior, reachable_classes, toy_data):
    assert _run("deepinversion", tiny_target, tiny_prior, reachable_classes, toy_data).info["bn_layers"] == 4


def test_select_top_keeps_the_best_candidates_per_class():
    from pipeline.attacks.base import select_top

    images = torch.arange(6.0).view(6, 1, 1, 1)
    labels = torch.tensor([0, 0, 0, 2, 2, 2])
    scores = torch.tensor([0.1, 0.9, 0.5, 0.3, 0.2, 0.8])
    kept_images, kept_labels, kept_scores = select_top(images, labels, scores, restarts=3, keep=2)
    assert kept_images.flatten().tolist() == [1.0, 2.0, 5.0, 3.0]
    assert kept_labels.tolist() == [0, 0, 2, 2] and kept_scores.tolist() == pytest.approx([0.9, 0.5, 0.8, 0.3])


def test_presets_are_defaults_of_the_named_variant():
    from pipeline.attacks import attack_defaults

    assert attack_defaults("gmi_bpda")["bpda"] is True and attack_defaults("gmi")["bpda"] is False
    assert attack_defaults("gmi_confidence")["identity_loss"] == "confidence_aware"
    assert create_attack("gmi_confidence", target_confidence=0.7).target_confidence == 0.7
    assert attack_defaults("deepinversion")["bn_weight"] > 0 == attack_defaults("pixel")["bn_weight"]


@pytest.mark.parametrize("name", list_attacks())
def test_every_attack_has_a_recommended_budget(name):
    from pipeline.attacks import recommended_budget

    assert isinstance(recommended_budget(name), AttackBudget)
