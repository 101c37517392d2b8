"""Defense registry: every defense takes the trained baseline and returns a hardened model.

A defense is a function ``(baseline, config, data) -> DefenseResult`` that reuses the one training
loop (``pipeline.train.fit``); stages look defenses up by the name in ``harden.defense``. Its config
(a ``DefenseConfig``) also declares, in one method, what an adaptive attacker knows about it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from pipeline.config import Section
from pipeline.data.parts import LabelledImages
from pipeline.models import Classifier
from pipeline.registry import Registry
from pipeline.train import EpochCallback


@dataclass(frozen=True)
class DefenseKnowledge:
    """What an adaptive attacker knows about a defense (Kerckhoffs: everything but the secret data).

    Each field is an attack parameter; suite entries with ``adapt_to_defense: true`` receive every
    field the defense declares.
    """

    target_confidence: float | None = None  # the true-class probability training aimed at (CALoR's p*)

    def attack_params(self) -> dict[str, float]:
        """The declared fields, as the attack parameters they set (nothing declared: empty)."""
        return {name: value for name, value in asdict(self).items() if value is not None}

    @classmethod
    def example(cls) -> DefenseKnowledge:
        """A valid value for every field: lets params loading check that an adaptive entry accepts them all."""
        return cls(target_confidence=0.5)


class DefenseConfig(Section):
    """A defense's ``harden.<name>`` settings."""

    def attacker_knowledge(self) -> DefenseKnowledge:
        """What an adaptive attacker knows about the defense with these settings; by default nothing
        it could aim at (a defense with a published target, like CALoR's p*, overrides this)."""
        return DefenseKnowledge()


@dataclass(frozen=True)
class DefenseData:
    train: LabelledImages
    test: LabelledImages


@dataclass
class DefenseResult:
    model: Classifier
    history: dict[str, list[dict[str, float]]] = field(default_factory=dict)  # per training phase
    report: dict[str, Any] = field(default_factory=dict)  # what the defense wants recorded


class Defense(Protocol):
    def __call__(
        self, baseline: Classifier, config: Any, data: DefenseData, on_epoch: PhaseCallback | None = None
    ) -> DefenseResult: ...


PhaseCallback = Callable[[str], EpochCallback]  # phase name -> per-epoch callback


@dataclass(frozen=True)
class DefenseSpec:
    """A registered defense: its function and the schema of its ``harden.<name>`` params."""

    name: str
    apply: Defense
    config_schema: type[DefenseConfig]


DEFENSES: Registry[DefenseSpec] = Registry("defense")


def register_defense(name: str, config_schema: type[DefenseConfig]) -> Callable[[Defense], Defense]:
    def decorator(fn: Defense) -> Defense:
        DEFENSES.register(name)(DefenseSpec(name, fn, config_schema))
        return fn

    return decorator


def get_defense(name: str) -> DefenseSpec:
    return DEFENSES.get(name)


def list_defenses() -> list[str]:
    return DEFENSES.names()
