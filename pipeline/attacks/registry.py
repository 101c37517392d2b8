"""Attack registry: a name maps to an attack class plus a preset of parameter defaults.

Variants are data: ``gmi_bpda`` is ``GMIAttack`` with ``bpda=True`` by default, not a subclass.
Explicit params override the preset (so a stage can tune e.g. ``gmi_confidence``'s target).
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError

from pipeline.attacks.base import Attack, AttackBudget
from pipeline.param_types import STRICT_PARAMS
from pipeline.registry import Registry

A = TypeVar("A", bound=type[Attack])


@dataclass(frozen=True)
class AttackSpec:
    cls: type[Attack]
    preset: dict[str, Any] = field(default_factory=dict)
    budget: AttackBudget | None = None

    def param_names(self) -> list[str]:
        return [f.name for f in dataclasses.fields(self.cls) if f.init]


ATTACKS: Registry[AttackSpec] = Registry("attack")


def register_attack(name: str, *, budget: AttackBudget | None = None, **preset: Any) -> Callable[[A], A]:
    """Class decorator: register ``cls`` under ``name``, with ``preset`` as that name's defaults.

    ``budget`` is the budget tuned for the default data (10 classes of 28×28 images, about 30 s per
    run on one CPU core); ``recommended_budget(name)`` returns it.
    """

    def decorator(cls: A) -> A:
        spec = AttackSpec(cls, dict(preset), budget)
        unknown = sorted(set(preset) - set(spec.param_names()))
        if unknown:
            raise ValueError(f"preset of attack {name!r} sets unknown parameters {unknown}")
        ATTACKS.register(name)(spec)
        return cls

    return decorator


def create_attack(name: str, **params: Any) -> Attack:
    """Build a registered attack; unknown names or parameters raise with the known ones listed."""
    spec = ATTACKS.get(name)
    known = spec.param_names()
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ValueError(f"attack {name!r} has no parameter(s) {unknown}; known: {known}")
    return spec.cls(**{**spec.preset, **params})


def param_type_problems(name: str, params: dict[str, Any]) -> list[str]:
    """Params read from YAML, checked against the attack's field types without coercion.

    ``bpda: 1``, ``lr: "0.1"`` and ``lr: .nan`` would otherwise reach the attack (``True`` passes
    an int check; ``nan > 0`` is False but ``inf > 0`` is True). Ranges stay the attack's own checks.
    """
    spec = ATTACKS.get(name)
    hints = typing.get_type_hints(spec.cls)
    problems = []
    for key, value in params.items():
        if key not in spec.param_names():
            continue  # create_attack names unknown parameters with the known ones
        try:
            TypeAdapter(hints[key], config=STRICT_PARAMS).validate_python(value)
        except ValidationError as err:
            problems.append(f"{key}: {err.errors()[0]['msg']} (got {value!r})")
    return problems


def attack_defaults(name: str) -> dict[str, Any]:
    """Default parameters of a registered attack (class defaults overridden by its preset)."""
    spec = ATTACKS.get(name)
    defaults = {
        f.name: f.default for f in dataclasses.fields(spec.cls)
        if f.init and f.default is not dataclasses.MISSING
    }  # fmt: skip
    return {**defaults, **spec.preset}


def recommended_budget(name: str) -> AttackBudget:
    """The budget an attack was tuned with (see ``register_attack``); raises if none was recorded."""
    spec = ATTACKS.get(name)
    if spec.budget is None:
        raise ValueError(f"attack {name!r} has no recommended budget; pass an AttackBudget explicitly")
    return spec.budget


def list_attacks() -> list[str]:
    return ATTACKS.names()
