"""The ``compare`` and ``autoharden`` params sections.

A comparison *setting* is a ``harden`` section (``defense`` plus that defense's settings) with a
label: exactly what ``dvc repro`` would run as the hardening stage, so any row of the comparison
can be promoted to the default pipeline by copying its ``harden`` block into params.yaml.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

from pydantic import Field, model_validator

from pipeline.classifier_training import ClassifierStage
from pipeline.config import Section, TrainConfig, deep_merge, parse_section
from pipeline.defenses import HardenSection
from pipeline.yaml_strict import load_yaml

SEED_STRIDE = 1000  # compare seed s shifts every seed inside a setting by s · SEED_STRIDE
SEED_KEYS = ("seed", "noise_seed")


class CompareSetting(Section):
    label: str
    kind: Literal["defense", "ablation", "control"] = "defense"
    harden: dict[str, Any]

    def harden_section(self, seed: int = 0, overrides: dict[str, Any] | None = None) -> HardenSection:
        """The setting as a validated ``harden`` section, reseeded for compare seed ``seed``."""
        stray = sorted(set(overrides or {}) - {"defense", self.harden.get("defense")})
        if stray:
            raise ValueError(
                f"override of {stray} does not apply: this setting's defense is {self.harden.get('defense')!r}"
            )
        raw = reseed(deep_merge(self.harden, overrides or {}), seed)
        section = parse_section("harden", raw, HardenSection, source=f"compare setting {self.label!r}")
        section.defense_settings()  # validates harden.<defense> against the defense's own schema
        return section


class CompareSection(Section):
    seeds: list[int] = Field(min_length=1)
    attack: dict[str, Any] = Field(default_factory=dict)  # overlay on the `attack` section
    target_gan: dict[str, Any] = Field(default_factory=dict)  # overlay on the `target_gan` section
    finetune: TrainConfig | None = None  # the shared budget; settings refer to it by YAML anchor
    reference: ClassifierStage | None = None  # trained on public data only (stages/compare_reference.py)
    settings: dict[str, CompareSetting] = Field(min_length=1)

    @model_validator(mode="after")
    def _settings_are_valid(self) -> CompareSection:
        if "baseline" in self.settings:
            raise ValueError("settings: 'baseline' is reserved for the undefended baseline (its own stage)")
        for name, setting in self.settings.items():
            try:
                setting.harden_section()
            except (ValueError, KeyError) as err:  # KeyError: an unregistered defense name
                raise ValueError(f"settings.{name}.harden: {err}") from None
        return self

    def attack_raw(self, attack: dict[str, Any], seed: int) -> dict[str, Any]:
        """The attack section for one compare seed: the overlay applied, one attack seed."""
        return {**deep_merge(attack, self.attack), "seeds": [seed]}

    def target_gan_raw(self, target_gan: dict[str, Any]) -> dict[str, Any]:
        """The target-specific GANs' section with the compare overlay applied (fewer iterations)."""
        return deep_merge(target_gan, self.target_gan)


class AutohardenSection(Section):
    """Grid over CALoR's rank r and CA exponent b of the shipped ``harden`` section."""

    ranks: list[int] = Field(min_length=1)
    exponents: list[float] = Field(min_length=1)
    seeds: list[int] = Field(min_length=1)


def reseed(raw: dict[str, Any], seed: int) -> dict[str, Any]:
    """A copy of ``raw`` with every ``seed``/``noise_seed`` value shifted by ``seed · SEED_STRIDE``."""
    out = copy.deepcopy(raw)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in SEED_KEYS and isinstance(value, int):
                    node[key] = value + seed * SEED_STRIDE
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(out)
    return out


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``["calor.low_rank.rank=5", ...]`` → nested dict; values parsed as YAML (5 → int, 4.0 → float)."""
    merged: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"override {pair!r}: expected dotted.key=value")
        node: dict[str, Any] = load_yaml(value, f"override {pair!r}")
        for part in reversed(key.split(".")):
            node = {part: node}
        merged = deep_merge(merged, node)
    return merged
