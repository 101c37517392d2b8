"""Typed params, the base layer: ``Section``, the training loop's ``TrainConfig``, read/merge/validate.

Each stage reads only its own section (so DVC re-runs only what a params edit affects). Unknown
keys, wrong types and out-of-range values are rejected with the dotted key in the message. Every
feature owns its section beside its code (``HardenSection`` in ``pipeline.defenses``, ...);
``pipeline.params_schema`` assembles them. This module imports nothing from ``pipeline``, so any
module may import it without a cycle.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipeline.param_types import STRICT_PARAMS
from pipeline.yaml_strict import load_yaml

DEFAULT_PARAMS = Path("params.yaml")
S = TypeVar("S", bound=BaseModel)


class Section(BaseModel):
    """Frozen and strict: a typo in params.yaml is an error, not a silent default.

    ``strict``: no coercion (``true`` is not 1, ``"0.1"`` is not 0.1; an int still fills a float).
    ``allow_inf_nan=False``: a nan or inf threshold would make every comparison against it pass or fail.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, **STRICT_PARAMS)


class TrainConfig(Section):
    """The one training loop's knobs (``pipeline.train.fit``)."""

    epochs: int = Field(ge=1)
    batch_size: int = Field(128, ge=1)
    optimizer: Literal["sgd", "adam", "adamw"] = "adam"
    lr: float = Field(1e-3, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    schedule: Literal["cosine", "step", "onecycle", "none"] = "cosine"
    step_milestones: list[int] = Field(default_factory=list)
    step_gamma: float = Field(0.1, gt=0, le=1)
    augment: Literal["none", "flip_shift", "flip_shift_robust"] = "none"
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    seed: int = 0


def _format_errors(err: ValidationError, prefix: str) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in (prefix, *e["loc"]) if p != "")
        lines.append(f"  {key}: {e['msg']} (got {e.get('input')!r})")
    return "\n".join(lines)


def read_params(path: str | os.PathLike = DEFAULT_PARAMS) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: params file not found")
    try:
        data = load_yaml(path.read_text(), str(path)) or {}  # a repeated key is an error naming it
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML ({err})") from err
    if not isinstance(data, dict):
        raise ValueError(f"{path}: top level must be a mapping of sections")
    return data


def parse_section(name: str, raw: Any, schema: type[S], source: str = "params") -> S:
    """Validate one section; the error lists every bad key at once, with its dotted name."""
    if raw is None:
        raise ValueError(f"{source}: missing section {name!r}")
    try:
        return schema.model_validate(raw)
    except ValidationError as err:
        raise ValueError(f"{source}: invalid params\n{_format_errors(err, name)}") from None


def load_section(name: str, path: str | os.PathLike, schema: type[S]) -> S:
    """Section ``name`` of the params file at ``path``, validated by ``schema`` (the feature owning it)."""
    return parse_section(name, read_params(path).get(name), schema, source=str(path))


def deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """Overlay wins; mappings merge key by key, everything else is replaced."""
    merged = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged
