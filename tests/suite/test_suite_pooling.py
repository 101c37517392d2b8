"""The suite pools every reconstruction over attack seeds: the counts the gate's intervals are built on."""

from __future__ import annotations

import pytest
import torch

from pipeline.data.parts import LabelledImages
from pipeline.defenses import DefenseKnowledge
from pipeline.suite import AttackSection, PrivateReference, run_suite
from tests.attacks import toy


@pytest.fixture(scope="module")
def models():
    images, labels = toy.toy_images(20, seed=0)
    target = toy.train_classifier(toy.tiny_classifier(seed=0, low_rank=False), images, labels, steps=60, seed=0)
    judge = toy.train_classifier(toy.tiny_classifier("judge_net", seed=1, low_rank=False), images, labels, 60, 1)
    data = LabelledImages(images, labels)
    return target, judge, PrivateReference.build(judge, data, data)


def test_pooled_counts_are_every_reconstruction_of_every_seed_and_agree_with_the_per_seed_means(models):
    target, judge, reference = models
    cfg = AttackSection.model_validate({
        "seeds": [0, 1, 2], "budget": {"steps": 5, "restarts": 4, "samples_per_class": 2},
        "suite": {"pixel": {"attack": "pixel"}, "gmi": {"attack": "gmi"}},
    })  # fmt: skip
    assert cfg.prior_kinds() == {"generic"}
    report, _ = run_suite(target, judge, {"generic": toy.untrained_prior(0)}, None, reference, cfg, DefenseKnowledge())
    for row in report["attacks"].values():
        pooled = row["acc1_pooled"]
        assert pooled["n"] == 3 * toy.NUM_CLASSES * 2 == 3 * row["reconstructions_per_seed"]
        assert pooled["correct"] == pytest.approx(row["acc1"]["mean"] * pooled["n"])
    assert report["chance_acc1"] == pytest.approx(1 / toy.NUM_CLASSES)


def test_an_attack_whose_gan_was_not_given_is_named(models):
    target, judge, reference = models
    cfg = AttackSection.model_validate({
        "seeds": [0], "budget": {"steps": 2, "restarts": 1, "samples_per_class": 1},
        "suite": {"plgmi": {"attack": "plgmi"}},
    })  # fmt: skip
    assert cfg.prior_kinds() == {"plgmi"}
    with pytest.raises(ValueError, match=r"'plgmi' GAN, but only \['generic'\]"):
        run_suite(target, judge, {"generic": toy.untrained_prior(0)}, None, reference, cfg, DefenseKnowledge())


def test_floor_model_is_an_untrained_copy_of_the_architecture_fixed_by_its_seed(models):
    from pipeline.suite import floor_model

    target, _, _ = models
    a, b, c = floor_model(target, 0), floor_model(target, 0), floor_model(target, 1)
    assert a.config == target.config
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    assert not torch.equal(a.state_dict()["features.0.weight"], c.state_dict()["features.0.weight"])
    assert not torch.equal(a.state_dict()["features.0.weight"], target.state_dict()["features.0.weight"])
