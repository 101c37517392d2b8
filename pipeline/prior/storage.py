"""Prior checkpoints (state_dicts + config, safe to load) and PNG sample grids."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from pipeline.io import atomic_write_with
from pipeline.prior.networks import Discriminator, Generator, ImagePrior, PriorConfig

FORMAT_VERSION = 1


def save_prior(path: str | os.PathLike, prior: ImagePrior, extra: dict[str, Any] | None = None) -> None:
    """Write generator and discriminator state_dicts with the config, atomically."""
    payload = {
        "format_version": FORMAT_VERSION,
        "kind": "gan_prior",
        "config": prior.config.model_dump(),
        "extra": extra or {},
        "generator": {k: v.detach().cpu() for k, v in prior.generator.state_dict().items()},
        "discriminator": {k: v.detach().cpu() for k, v in prior.discriminator.state_dict().items()},
    }
    atomic_write_with(path, lambda f: torch.save(payload, f))


def load_prior(path: str | os.PathLike) -> tuple[ImagePrior, dict[str, Any]]:
    """Rebuild the prior (eval mode) with ``weights_only=True``; returns it and the stored extras."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: prior checkpoint not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for corrupt/unsafe files
        raise ValueError(f"{path}: not a loadable prior checkpoint ({type(err).__name__}: {err})") from err
    for key in ("format_version", "kind", "config", "generator", "discriminator"):
        if not isinstance(payload, dict) or key not in payload:
            raise ValueError(f"{path}: prior checkpoint is missing the key {key!r}")
    if payload["kind"] != "gan_prior" or payload["format_version"] != FORMAT_VERSION:
        raise ValueError(f"{path}: not a gan_prior checkpoint of format_version {FORMAT_VERSION}")
    cfg = PriorConfig.model_validate(payload["config"])
    gen, disc = Generator(cfg), Discriminator(cfg)
    try:
        gen.load_state_dict(payload["generator"])
        disc.load_state_dict(payload["discriminator"])
    except RuntimeError as err:
        raise ValueError(f"{path}: weights do not match the stored prior config ({err})") from err
    return ImagePrior(gen, disc, cfg), {"config": payload["config"], "extra": payload["extra"]}


def save_image_grid(path: str | os.PathLike, images: torch.Tensor, nrow: int = 10) -> None:
    """Save (N, C, H, W) images in [0, 1] as one PNG grid (rows of ``nrow``), atomically."""
    from torchvision.utils import save_image

    if images.ndim != 4:
        raise ValueError(f"images must have shape (N, C, H, W), got {tuple(images.shape)}")
    grid_input = images.detach().cpu().float().clamp(0, 1)
    atomic_write_with(path, lambda f: save_image(grid_input, f, nrow=nrow, padding=2, format="png"))
