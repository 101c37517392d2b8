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


@AUGMENTATIONS.register("flip_shift_robust")
def flip_shift_robust(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """``flip_shift`` plus random contrast, a 3×3 blur on half the batch and Gaussian noise.

    Meant for the judge: a model that must still be right under blur, noise and contrast changes
    has to look at an object's shape rather than its fine texture, which is what reconstructions
    get wrong first (an earlier judge called dress-shaped reconstructions with strap-like texture
    "sandal").
    """
    x = flip_shift(x, generator)
    b = x.shape[0]
    contrast = 0.6 + 0.8 * torch.rand(b, 1, 1, 1, generator=generator)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * contrast + mean
    blur = torch.rand(b, generator=generator) < 0.5
    kernel = torch.tensor([1.0, 2.0, 1.0])
    kernel = (kernel[:, None] * kernel[None, :] / 16).expand(x.shape[1], 1, 3, 3)
    blurred = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel, groups=x.shape[1])
    x = torch.where(blur[:, None, None, None], blurred, x)
    noise = 0.05 * torch.rand(b, 1, 1, 1, generator=generator) * torch.randn(x.shape, generator=generator)
    return (x + noise).clamp(0, 1)
