"""Attack registry: a name maps to an attack class plus a preset of fixed parameters.

Variants are data: ``gmi_bpda`` is ``GMIAttack`` with ``bpda=True``, not a subclass.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pipeline.attacks.base import Attack
from pipeline.registry import Registry

A = TypeVar("A", bound=type[Attack])


@dataclass(frozen=True)
class AttackSpec:
    cls: type[Attack]
    preset: dict[str, Any] = field(default_factory=dict)

    def param_names(self) -> list[str]:
        return [f.name for f in dataclasses.fields(self.cls) if f.init]


ATTACKS: Registry[AttackSpec] = Registry("attack")


def register_attack(name: str, **preset: Any) -> Callable[[A], A]:
    """Class decorator: register ``cls`` under ``name``, with ``preset`` params fixed for that name."""

    def decorator(cls: A) -> A:
        spec = AttackSpec(cls, dict(preset))
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
    fixed = sorted(k for k in params if k in spec.preset and params[k] != spec.preset[k])
    if fixed:
        raise ValueError(f"attack {name!r} fixes {fixed} to {[spec.preset[k] for k in fixed]}; use another attack name")
    return spec.cls(**{**params, **spec.preset})


def attack_defaults(name: str) -> dict[str, Any]:
    """Default parameters of a registered attack (class defaults overridden by its preset)."""
    spec = ATTACKS.get(name)
    defaults = {
        f.name: f.default for f in dataclasses.fields(spec.cls)
        if f.init and f.default is not dataclasses.MISSING
    }  # fmt: skip
    return {**defaults, **spec.preset}


def list_attacks() -> list[str]:
    return ATTACKS.names()
