"""Typed params: one pydantic model per params.yaml section.

Each stage reads only its own section (so DVC re-runs only what a params edit affects). Unknown
keys, wrong types and out-of-range values are rejected with the dotted key in the message.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

from pipeline.param_types import STRICT_PARAMS, ChannelCount
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


class ModelSection(Section):
    arch: str = "convnet"
    width: int = Field(32, ge=8)

    @model_validator(mode="after")
    def _known_arch(self) -> ModelSection:
        from pipeline.models import list_architectures

        if self.arch not in list_architectures():
            raise ValueError(f"arch {self.arch!r} is not one of {list_architectures()}")
        return self


class ImageFolderSection(Section):
    root: str
    split_file: str | None = None
    image_size: int = Field(64, ge=8)
    channels: ChannelCount = 3  # 1 or 3, and `true` is not 1


class DataSection(Section):
    source: Literal["fashion_mnist", "image_folder"] = "fashion_mnist"
    root: str | None = None
    image_folder: ImageFolderSection | None = None

    @model_validator(mode="after")
    def _folder_needs_settings(self) -> DataSection:
        if self.source == "image_folder" and self.image_folder is None:
            raise ValueError("source 'image_folder' needs the data.image_folder section")
        return self


class SplitSection(Section):
    mode: Literal["sample_disjoint", "class_disjoint"] = "sample_disjoint"
    private_classes: list[int] | None = None
    public_classes: list[int] | None = None
    private_train_per_class: int = Field(ge=1)
    private_test_per_class: int = Field(ge=1)
    public_per_class: int = Field(ge=1)
    judge_train_per_class: int | None = Field(None, ge=1)  # null = every training image of the class
    judge_test_per_class: int | None = Field(None, ge=1)  # null = every test image of the class
    seed: int = 0


class ClassifierStage(Section):
    """train_baseline / train_judge: an architecture and how to train it."""

    model: ModelSection
    train: TrainConfig


class HardenSection(BaseModel):
    """``defense`` names a registered defense; its settings live in ``harden.<defense>``.

    The defense's own schema (``pipeline.defenses``) validates that subsection.
    """

    model_config = ConfigDict(extra="allow", frozen=True)
    defense: str = "calor"

    def defense_settings(self) -> Any:
        from pipeline.defenses import get_defense

        spec = get_defense(self.defense)
        return parse_section(f"harden.{self.defense}", (self.model_extra or {}).get(self.defense), spec.config_schema)


class MlflowSection(Section):
    experiment: str = "calor-pipeline"


SECTIONS: dict[str, type[Section]] = {
    "data": DataSection,
    "split": SplitSection,
    "baseline": ClassifierStage,
    "judge": ClassifierStage,
    "harden": HardenSection,
    "mlflow": MlflowSection,
}


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


def parse_section(name: str, raw: Any, schema: type[S] | None = None, source: str = "params") -> S:
    """Validate one section; the error lists every bad key at once, with its dotted name."""
    schema = schema or SECTIONS[name]
    if raw is None:
        raise ValueError(f"{source}: missing section {name!r}")
    try:
        return schema.model_validate(raw)
    except ValidationError as err:
        raise ValueError(f"{source}: invalid params\n{_format_errors(err, name)}") from None


def load_section(name: str, path: str | os.PathLike = DEFAULT_PARAMS, schema: type[S] | None = None) -> S:
    return parse_section(name, read_params(path).get(name), schema, source=str(path))


def section_from_dataclass(cls: type) -> type[Section]:
    """A strict params section mirroring a config dataclass's fields, types and defaults.

    Lets library configs stay plain dataclasses while params.yaml still gets key-named errors;
    build the dataclass from ``section.model_dump()`` afterwards for its own value checks.
    """
    hints = typing.get_type_hints(cls)
    fields = {
        f.name: (hints[f.name], f.default if f.default is not dataclasses.MISSING else ...)
        for f in dataclasses.fields(cls)
    }
    return create_model(f"{cls.__name__}Section", __base__=Section, **fields)


def all_sections() -> dict[str, type[BaseModel]]:
    """Core sections plus those owned by later modules (imported lazily: they import this one)."""
    from pipeline.compare.config import AutohardenSection, CompareSection
    from pipeline.export.config import ExportSection, RegisterSection, ServeSection
    from pipeline.floor import FloorSection
    from pipeline.gate import GateSection
    from pipeline.prior import PriorConfig
    from pipeline.suite import AttackSection
    from pipeline.target_gan import TargetGANSection

    return {
        **SECTIONS, "prior": section_from_dataclass(PriorConfig), "attack": AttackSection, "gate": GateSection,
        "floor": FloorSection, "target_gan": TargetGANSection,
        "export": ExportSection, "register": RegisterSection, "serve": ServeSection,
        "compare": CompareSection, "autoharden": AutohardenSection,
    }  # fmt: skip


def validate_params(path: str | os.PathLike = DEFAULT_PARAMS) -> dict[str, BaseModel]:
    """Validate every known section and refuse unknown top-level sections."""
    raw = read_params(path)
    sections = all_sections()
    unknown = sorted(set(raw) - set(sections))
    if unknown:
        raise ValueError(f"{path}: unknown top-level keys {unknown}; known: {sorted(sections)}")
    parsed = {
        name: parse_section(name, raw.get(name), schema, str(path)) for name, schema in sections.items() if name in raw
    }
    if "harden" in parsed:
        parsed["harden"].defense_settings()  # the chosen defense's own schema checks harden.<defense>
    return parsed


def deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """Overlay wins; mappings merge key by key, everything else is replaced."""
    merged = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged
