"""Cheap, vectorised training augmentations for small images (no per-sample Python loop)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from pipeline.registry import Registry

Augmentation = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
AUGMENTATIONS: Registry[Augmentation] = Registry("augmentation")


@AUGMENTATIONS.register("none")
def no_augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return x


@AUGMENTATIONS.register("flip_shift")
def flip_shift(x: torch.Tensor, generator: torch.Generator, max_shift: int = 2) -> torch.Tensor:
    """Random horizontal flip and a random translation of up to ``max_shift`` pixels (zero padded)."""
    b, _, h, w = x.shape
    flip = torch.rand(b, generator=generator) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    padded = F.pad(x, (max_shift,) * 4)
    dy = torch.randint(0, 2 * max_shift + 1, (b,), generator=generator)
    dx = torch.randint(0, 2 * max_shift + 1, (b,), generator=generator)
    rows = (dy[:, None] + torch.arange(h)[None, :])[:, None, :, None].expand(b, x.shape[1], h, w)
    cols = (dx[:, None] + torch.arange(w)[None, :])[:, None, None, :].expand(b, x.shape[1], h, w)
    batch_idx = torch.arange(b)[:, None, None, None]
    channel_idx = torch.arange(x.shape[1])[None, :, None, None]
    return padded[batch_idx, channel_idx, rows, cols]
