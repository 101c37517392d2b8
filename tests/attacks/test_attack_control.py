"""Controls on a toy task, judged by a trained judge: no success without a trained target.

An attack against an UNTRAINED target has nothing private to recover, so the judge's accuracy on
its reconstructions must stay near chance (1/4); against a trained target the same attack must
do clearly better, so the control has the power to catch a broken metric or attack.
"""

from __future__ import annotations

import pytest

from pipeline.attacks import AttackBudget, WhiteBoxTarget, create_attack
from pipeline.metrics import attack_accuracy
from tests.attacks import toy

CLASSES = list(range(toy.NUM_CLASSES))
BUDGET = AttackBudget(steps=40, restarts=6, samples_per_class=3)


@pytest.fixture(scope="module")
def setup(toy_data):
    images, labels = toy_data
    judge = toy.train_classifier(toy.tiny_classifier("judge_net", seed=7, low_rank=False), images, labels, 40, seed=7)
    target = toy.train_classifier(toy.tiny_classifier("convnet", seed=3, low_rank=False), images, labels, 40, seed=3)
    return judge, target, toy.template_prior()


def test_judge_and_target_learn_the_toy_task(setup, toy_data):
    judge, target, _ = setup
    images, labels = toy.toy_images(20, seed=1)  # fresh samples
    assert attack_accuracy(judge, images, labels, k=(1,))["acc@1"] >= 0.95
    assert attack_accuracy(target, images, labels, k=(1,))["acc@1"] >= 0.95


def test_untrained_target_stays_near_chance_trained_target_does_not(setup):
    judge, target, prior = setup
    attack = create_attack("gmi")
    control = []
    for seed in range(3):  # the mean over random untrained targets is what "chance" refers to
        untrained = toy.tiny_classifier("convnet", seed=100 + seed, low_rank=False)
        result = attack.run(WhiteBoxTarget(untrained), CLASSES, BUDGET, seed=seed, generator=prior)
        control.append(attack_accuracy(judge, result.images, result.labels, k=(1,))["acc@1"])
    trained = attack.run(WhiteBoxTarget(target), CLASSES, BUDGET, seed=0, generator=prior)
    attacked = attack_accuracy(judge, trained.images, trained.labels, k=(1,))["acc@1"]
    assert sum(control) / len(control) <= 0.5, control
    assert attacked >= 0.75, attacked
