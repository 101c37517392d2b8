"""Target-specific GAN checkpoints: state_dicts + architecture config, safe to load."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from pipeline.io import atomic_write_with
from pipeline.prior.networks import PriorConfig
from pipeline.target_gan.networks import (
    ConditionalPrior,
    KEDMIPrior,
    build_kedmi_networks,
    build_plgmi_networks,
)

FORMAT_VERSION = 1
_KINDS = {"plgmi_gan": (ConditionalPrior, build_plgmi_networks), "kedmi_gan": (KEDMIPrior, build_kedmi_networks)}


def _kind_of(prior: ConditionalPrior | KEDMIPrior) -> str:
    for kind, (cls, _) in _KINDS.items():
        if type(prior) is cls:
            return kind
    raise TypeError(f"prior must be a ConditionalPrior or KEDMIPrior, got {type(prior).__name__}")


def save_target_gan(
    path: str | os.PathLike, prior: ConditionalPrior | KEDMIPrior, extra: dict[str, Any] | None = None
) -> None:
    """Write generator and discriminator state_dicts with the architecture and class count, atomically."""
    payload = {
        "format_version": FORMAT_VERSION,
        "kind": _kind_of(prior),
        "config": prior.config.model_dump(),
        "num_classes": prior.num_classes,
        "extra": extra or {},
        "generator": {k: v.detach().cpu() for k, v in prior.generator.state_dict().items()},
        "discriminator": {k: v.detach().cpu() for k, v in prior.discriminator.state_dict().items()},
    }
    atomic_write_with(path, lambda f: torch.save(payload, f))


def load_target_gan(path: str | os.PathLike) -> tuple[ConditionalPrior | KEDMIPrior, dict[str, Any]]:
    """Rebuild the frozen prior with ``weights_only=True``; returns it and ``{"kind", "config", "extra"}``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: target GAN checkpoint not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for corrupt/unsafe files
        raise ValueError(f"{path}: not a loadable target GAN checkpoint ({type(err).__name__}: {err})") from err
    for key in ("format_version", "kind", "config", "num_classes", "generator", "discriminator"):
        if not isinstance(payload, dict) or key not in payload:
            raise ValueError(f"{path}: target GAN checkpoint is missing the key {key!r}")
    if payload["kind"] not in _KINDS or payload["format_version"] != FORMAT_VERSION:
        raise ValueError(
            f"{path}: kind {payload['kind']!r} / format_version {payload['format_version']!r} is not one of "
            f"{sorted(_KINDS)} / {FORMAT_VERSION}"
        )
    cls, build = _KINDS[payload["kind"]]
    try:
        cfg = PriorConfig.model_validate(payload["config"])
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: bad architecture config ({err})") from err
    gen, disc = build(cfg, payload["num_classes"], None)
    try:
        gen.load_state_dict(payload["generator"])
        disc.load_state_dict(payload["discriminator"])
    except RuntimeError as err:
        raise ValueError(f"{path}: weights do not match the stored architecture ({err})") from err
    meta = {"kind": payload["kind"], "config": payload["config"], "extra": payload["extra"]}
    return cls(gen, disc, cfg, payload["num_classes"]), meta
