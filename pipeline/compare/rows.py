"""The models of the comparison rows that are not a defense, for one compare seed.

The baseline row is the baseline itself (``run.harden(inputs, None)``); the floor knows nothing of
the private classes (``pipeline.floor``); the public-only reference is the baseline's architecture
trained on the public split. Their seeds shift per compare seed like every setting's.
"""

from __future__ import annotations

import os
import time

from pipeline.classifier_training import ClassifierStage, train_classifier
from pipeline.compare.config import SEED_STRIDE
from pipeline.compare.run import CompareInputs, TrainedModel
from pipeline.data import LabelledImages, load_labelled
from pipeline.floor import FloorSection, build_floor

REFERENCE = "public_only"


def floor_row(inputs: CompareInputs, section: FloorSection, seed: int, data: str | os.PathLike) -> TrainedModel:
    """The floor model for one compare seed (its init/training seed shifted like every row's)."""
    seeded = section.model_copy(update={"seed": section.seed + seed * SEED_STRIDE})
    public = load_labelled(data, "public") if section.kind == "public_only" else None
    start = time.perf_counter()
    model = build_floor(inputs.baseline, seeded, public)
    return TrainedModel(model, {"defense": "none", "floor": seeded.kind}, time.perf_counter() - start,
                        {"floor": seeded.model_dump()})  # fmt: skip


def reference_row(inputs: CompareInputs, section: ClassifierStage, seed: int, public: LabelledImages) -> TrainedModel:
    """The public-only reference for one compare seed: trained on ``public``, never on a private image."""
    seeded = section.model_copy(update={"train": section.train.model_copy(
        update={"seed": section.train.seed + seed * SEED_STRIDE})})  # fmt: skip
    start = time.perf_counter()
    model, _, _ = train_classifier(seeded, public, inputs.data.test, inputs.baseline.num_classes, desc=REFERENCE)
    return TrainedModel(
        model, {"defense": "none", "trained_on": "public split only"}, time.perf_counter() - start,
        {"compare": {"reference": seeded.model_dump()}},
    )  # fmt: skip
