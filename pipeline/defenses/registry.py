"""Defense registry: every defense takes the trained baseline and returns a hardened model.

A defense is a function ``(baseline, config, data) -> DefenseResult`` that reuses the one training
loop (``pipeline.train.fit``); stages look defenses up by the name in ``harden.defense``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pipeline.config import Section
from pipeline.data.parts import LabelledImages
from pipeline.models import Classifier
from pipeline.registry import Registry
from pipeline.train import EpochCallback


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
    config_schema: type[Section]


DEFENSES: Registry[DefenseSpec] = Registry("defense")


def register_defense(name: str, config_schema: type[Section]) -> Callable[[Defense], Defense]:
    def decorator(fn: Defense) -> Defense:
        DEFENSES.register(name)(DefenseSpec(name, fn, config_schema))
        return fn

    return decorator


def get_defense(name: str) -> DefenseSpec:
    return DEFENSES.get(name)


def list_defenses() -> list[str]:
    return DEFENSES.names()
