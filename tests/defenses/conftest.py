"""Fixtures for the defense tests: toy data and a briefly trained baseline (session scoped)."""

from __future__ import annotations

import pytest

from pipeline.data.parts import LabelledImages
from pipeline.models import Classifier
from tests.defenses.tiny import make_baseline
from tests.fixtures_models import tiny_data


@pytest.fixture(scope="session")
def data() -> LabelledImages:
    return tiny_data()


@pytest.fixture(scope="session")
def baseline(data) -> Classifier:
    """Shared by every test: defenses must leave it untouched (the registry test checks)."""
    return make_baseline(data)
