"""The floor: a model that carries no information about the private classes, attacked like the others.

Leakage is what an attack achieves against our model *beyond* what the same attack achieves
against a model that knows nothing of the private classes (GAN priors and public data already
draw something; a judge can be fooled by adversarial texture). Which model is "knows nothing"
depends on the protocol, so the kinds are a registry:

- ``untrained`` (``class_disjoint``): the target's architecture at its random initialisation.
- ``public_only`` (``sample_disjoint``, where the public data shows the private classes): the
  target's architecture trained on the labelled public split only, never on a private image.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from pydantic import model_validator

from pipeline.config import Section, TrainConfig
from pipeline.data.parts import LabelledImages
from pipeline.models import Classifier, create_model
from pipeline.registry import Registry
from pipeline.seeding import seeded_rng
from pipeline.train import fit


class FloorSection(Section):
    kind: Literal["untrained", "public_only"] = "untrained"
    seed: int = 0
    train: TrainConfig | None = None  # public_only: how the public-only model is trained

    @model_validator(mode="after")
    def _train_when_needed(self) -> FloorSection:
        if self.kind == "public_only" and self.train is None:
            raise ValueError("floor.train is required when floor.kind is 'public_only'")
        return self


FloorBuilder = Callable[[Classifier, FloorSection, LabelledImages | None], Classifier]
FLOORS: Registry[FloorBuilder] = Registry("floor kind")


@FLOORS.register("untrained")
def untrained_floor(target: Classifier, section: FloorSection, public: LabelledImages | None) -> Classifier:
    with seeded_rng(section.seed):
        return create_model(target.config).eval()


@FLOORS.register("public_only")
def public_only_floor(target: Classifier, section: FloorSection, public: LabelledImages | None) -> Classifier:
    if public is None or section.train is None:
        raise ValueError("the public_only floor needs the labelled public split and floor.train")
    outside = sorted(set(public.labels.unique().tolist()) - set(range(target.num_classes)))
    if outside:
        raise ValueError(
            f"public_only floor: public labels {outside} are not classes of the target; this floor is for "
            "sample_disjoint splits (the public data shows the private classes)"
        )
    with seeded_rng(section.seed):
        model = create_model(target.config)
    fit(model, public, section.train, desc="floor (public only)")
    return model.eval()


def build_floor(target: Classifier, section: FloorSection, public: LabelledImages | None = None) -> Classifier:
    """The floor model for ``target`` (same architecture); ``public`` only for ``public_only``."""
    return FLOORS.get(section.kind)(target, section, public)
