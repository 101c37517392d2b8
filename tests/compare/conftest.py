"""The toy task every compare test shares: a tiny baseline, judge and prior on 4-class toy images."""

from __future__ import annotations

import pytest

from pipeline.compare.run import CompareInputs
from pipeline.data.parts import LabelledImages
from pipeline.defenses import DefenseData
from pipeline.stage_utils import utility_report
from pipeline.suite import PrivateReference
from pipeline.target_gan import TargetGANSection
from tests.attacks import toy


@pytest.fixture(scope="module")
def inputs() -> CompareInputs:
    train = LabelledImages(*toy.toy_images(16, seed=0))
    test = LabelledImages(*toy.toy_images(8, seed=1))
    baseline = toy.train_classifier(toy.tiny_classifier(low_rank=False, seed=1), train.images, train.labels, 60, 0)
    judge = toy.train_classifier(toy.tiny_classifier(low_rank=False, seed=2), train.images, train.labels, 60, 1)
    accuracy = utility_report(baseline, train, test)["natural_accuracy"]
    return CompareInputs(
        baseline, accuracy, judge, toy.template_prior(), toy.toy_images(8, seed=3)[0],
        DefenseData(train, test), PrivateReference.build(judge, train, test), TargetGANSection(),
    )  # fmt: skip
