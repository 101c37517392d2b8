"""Every params.yaml section with the feature that owns it, and ``validate_params`` over all of them.

The top of the config layer: it imports every feature, so no feature imports it (stages read their
own section with ``pipeline.config.load_section`` and the feature's schema). Besides each section
on its own, it checks what spans sections: the chosen defense's settings (``harden.<defense>``) and
the compare pipeline's overlays on ``attack`` and ``target_gan``, so a bad attack parameter fails
when params.yaml is loaded, not in the middle of a suite.
"""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel

from pipeline.classifier_training import ClassifierStage
from pipeline.compare.config import AutohardenSection, CompareSection
from pipeline.config import DEFAULT_PARAMS, parse_section, read_params
from pipeline.data import DataSection, SplitSection
from pipeline.defenses import HardenSection
from pipeline.export.config import ExportSection
from pipeline.floor import FloorSection
from pipeline.gate import GateSection
from pipeline.prior import PriorConfig
from pipeline.registry_mlflow.config import RegisterSection
from pipeline.runtime import RuntimeSection
from pipeline.serve.config import ServeSection
from pipeline.suite import AttackSection
from pipeline.target_gan import TargetGANSection
from pipeline.tracking import MlflowSection

SECTIONS: dict[str, type[BaseModel]] = {
    "mlflow": MlflowSection, "runtime": RuntimeSection, "data": DataSection, "split": SplitSection,
    "baseline": ClassifierStage, "judge": ClassifierStage, "harden": HardenSection, "prior": PriorConfig,
    "floor": FloorSection, "attack": AttackSection, "target_gan": TargetGANSection, "gate": GateSection,
    "export": ExportSection, "register": RegisterSection, "serve": ServeSection,
    "compare": CompareSection, "autoharden": AutohardenSection,
}  # fmt: skip


def validate_params(path: str | os.PathLike = DEFAULT_PARAMS) -> dict[str, BaseModel]:
    """Validate every known section and what spans sections; refuse unknown top-level sections."""
    raw = read_params(path)
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise ValueError(f"{path}: unknown top-level keys {unknown}; known: {sorted(SECTIONS)}")
    parsed = {
        name: parse_section(name, raw.get(name), schema, str(path)) for name, schema in SECTIONS.items() if name in raw
    }
    if "harden" in parsed:
        parsed["harden"].defense_settings()  # the chosen defense's own schema checks harden.<defense>
    if "compare" in parsed:
        _check_compare_overlays(parsed["compare"], raw, str(path))
    return parsed


def _check_compare_overlays(compare: CompareSection, raw: dict[str, Any], source: str) -> None:
    """The attack suite and target GANs the compare stages run: the base sections with the overlays."""
    if "attack" in raw:
        merged = compare.attack_raw(raw["attack"], compare.seeds[0])
        parse_section("attack", merged, AttackSection, source=f"{source} (attack with compare.attack)")
    if "target_gan" in raw:
        merged = compare.target_gan_raw(raw["target_gan"])
        parse_section("target_gan", merged, TargetGANSection, source=f"{source} (target_gan with compare.target_gan)")
