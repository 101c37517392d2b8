"""Which target-specific GAN serves which attack kind, and training/loading all a suite needs.

The attack classes name the GAN they need through ``prior_kind`` (``plgmi``, ``kedmi``); this
registry maps that kind to its trainer and its params subsection, so the stage, the comparison and
the tests train exactly the GANs the configured suite uses, and nothing else.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import torch

from pipeline.models import Classifier
from pipeline.prior import ImagePrior
from pipeline.registry import Registry
from pipeline.target_gan.common import TargetGANResult
from pipeline.target_gan.config import GANSection, TargetGANSection
from pipeline.target_gan.kedmi import train_kedmi
from pipeline.target_gan.networks import ConditionalPrior, KEDMIPrior
from pipeline.target_gan.plgmi import train_plgmi
from pipeline.target_gan.storage import load_target_gan


@dataclass(frozen=True)
class TargetGANSpec:
    train: Callable[..., TargetGANResult]  # (target, public_uint8, subsection, warm_start, progress=...)
    section: Callable[[TargetGANSection], GANSection]  # its subsection of params `target_gan`


TARGET_GANS: Registry[TargetGANSpec] = Registry("target-specific GAN")
TARGET_GANS.register("plgmi")(TargetGANSpec(train_plgmi, lambda s: s.plgmi))
TARGET_GANS.register("kedmi")(TargetGANSpec(train_kedmi, lambda s: s.kedmi))


def train_one(
    kind: str, target: Classifier, public_uint8: torch.Tensor, section: TargetGANSection, generic: ImagePrior,
    progress: bool = True,
) -> TargetGANResult:  # fmt: skip
    spec = TARGET_GANS.get(kind)
    subsection = spec.section(section)
    return spec.train(target, public_uint8, subsection, generic if subsection.warm_start else None, progress=progress)


def train_target_gans(
    target: Classifier, public_uint8: torch.Tensor, section: TargetGANSection, generic: ImagePrior,
    kinds: Iterable[str], progress: bool = True,
) -> dict[str, ConditionalPrior | KEDMIPrior]:  # fmt: skip
    """The GANs of ``kinds`` that are target-specific, trained against ``target`` (others are ignored)."""
    wanted = sorted(set(kinds) & set(TARGET_GANS.names()))
    return {kind: train_one(kind, target, public_uint8, section, generic, progress).prior for kind in wanted}


def load_target_gans(directory: str | os.PathLike, kinds: Iterable[str]) -> dict[str, ConditionalPrior | KEDMIPrior]:
    """``<directory>/<kind>.pt`` for every target-specific kind in ``kinds`` (written by stage target_gan)."""
    wanted = sorted(set(kinds) & set(TARGET_GANS.names()))
    priors = {}
    for kind in wanted:
        prior, meta = load_target_gan(Path(directory) / f"{kind}.pt")
        if meta["kind"] != f"{kind}_gan":
            raise ValueError(f"{Path(directory) / f'{kind}.pt'}: holds a {meta['kind']!r}, expected {kind}_gan")
        priors[kind] = prior
    return priors
