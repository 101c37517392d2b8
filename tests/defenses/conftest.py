"""Fixtures for the defense tests: toy data and a briefly trained baseline (session scoped)."""

from __future__ import annotations

import pytest
import torch

from pipeline.models import Classifier
from pipeline.train import LabelledImages
from tests.defenses.tiny import make_baseline
from tests.fixtures_models import tiny_data


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Two shared cores: one intra-op thread is faster than two contended ones for tiny nets."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def data() -> LabelledImages:
    return tiny_data()


@pytest.fixture(scope="session")
def baseline(data) -> Classifier:
    """Shared by every test: defenses must leave it untouched (the registry test checks)."""
    return make_baseline(data)
