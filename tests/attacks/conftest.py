"""Shared tiny targets, priors and toy data for the attack tests (seconds in total)."""

from __future__ import annotations

import pytest
import torch

from tests.attacks import toy


@pytest.fixture(scope="session")
def toy_data() -> tuple[torch.Tensor, torch.Tensor]:
    return toy.toy_images(60, seed=0)


@pytest.fixture(scope="session")
def tiny_target():
    """Untrained low-rank/tanh convnet (CALoR-shaped head) on 12×12 images."""
    return toy.tiny_classifier(seed=0)


@pytest.fixture(scope="session")
def tiny_prior():
    return toy.untrained_prior(seed=0)


@pytest.fixture(scope="session")
def reachable_classes(tiny_target, tiny_prior) -> list[int]:
    """The two classes the untrained target assigns most often to prior samples (so a label-only
    attack can find starting points for them)."""
    labels = tiny_target(tiny_prior.sample(256, seed=0)).argmax(1)
    counts = torch.bincount(labels, minlength=tiny_target.num_classes)
    return sorted(counts.argsort(descending=True)[:2].tolist())
