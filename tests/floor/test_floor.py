"""The floor models: untrained on class_disjoint, trained on the public split only on sample_disjoint."""

from __future__ import annotations

import pytest
import torch

from pipeline.data.parts import LabelledImages
from pipeline.evaluate import classification_metrics, predict_proba
from pipeline.floor import FloorSection, build_floor
from tests.attacks import toy


@pytest.fixture(scope="module")
def target():
    images, labels = toy.toy_images(20, seed=0)
    return toy.train_classifier(toy.tiny_classifier(seed=0, low_rank=False), images, labels, steps=60, seed=0)


def accuracy(model, data: LabelledImages) -> float:
    return classification_metrics(predict_proba(model, data.images), data.labels)["natural_accuracy"]


def test_untrained_floor_knows_nothing_and_is_a_function_of_its_seed(target):
    test = LabelledImages(*toy.toy_images(10, seed=5))
    floor = build_floor(target, FloorSection(kind="untrained", seed=3))
    again = build_floor(target, FloorSection(kind="untrained", seed=3))
    assert floor.config == target.config
    assert all(torch.equal(p, q) for p, q in zip(floor.state_dict().values(), again.state_dict().values(), strict=True))
    assert accuracy(target, test) > 0.9 and accuracy(floor, test) < 0.6  # the trained target knows the classes


def test_public_only_floor_learns_from_the_public_split_alone(target):
    public = LabelledImages(*toy.toy_images(20, seed=7))
    test = LabelledImages(*toy.toy_images(10, seed=5))
    train = {"epochs": 8, "batch_size": 16, "lr": 0.01, "seed": 0}
    floor = build_floor(target, FloorSection(kind="public_only", seed=0, train=train), public)
    untrained = build_floor(target, FloorSection(kind="untrained", seed=0))
    assert accuracy(floor, test) > accuracy(untrained, test) + 0.3


def test_public_only_floor_refuses_public_classes_the_target_does_not_have(target):
    images, labels = toy.toy_images(4, seed=7)
    public = LabelledImages(images, labels + toy.NUM_CLASSES)  # class_disjoint: public labels follow the private
    section = FloorSection(kind="public_only", train={"epochs": 1})
    with pytest.raises(ValueError, match="sample_disjoint"):
        build_floor(target, section, public)
    with pytest.raises(ValueError, match="floor.train is required"):
        FloorSection(kind="public_only")
