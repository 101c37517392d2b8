"""DCGAN-style generator and discriminator used as the attacker's image prior.

Sized for CPU: at the default widths, 16 epochs on 10k 28×28 grayscale images take about two
minutes on one core (one intra-op thread; on a shared two-core machine two threads are slower). The
generator maps z ~ N(0, I) to images in [0, 1] (sigmoid output), the same range as every image in
the pipeline, so attacks can feed G(z) straight into the target.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import nn


@dataclass(frozen=True)
class PriorConfig:
    """Architecture and training settings of the GAN prior; stored inside every prior checkpoint."""

    image_size: int = 28
    channels: int = 1
    latent_dim: int = 64
    gen_width: int = 16
    disc_width: int = 16
    epochs: int = 16
    batch_size: int = 64
    lr: float = 5e-4
    beta1: float = 0.5
    ema_decay: float = 0.999  # the returned generator is an exponential moving average (0 = last weights)
    seed: int = 0

    def __post_init__(self) -> None:
        problems = []
        for name in ("image_size", "channels", "latent_dim", "gen_width", "disc_width", "epochs", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                problems.append(f"{name} must be a positive int, got {value!r}")
        if isinstance(self.image_size, int) and self.image_size % 4:
            problems.append(f"image_size must be divisible by 4 (two stride-2 stages), got {self.image_size}")
        if not self.lr > 0:
            problems.append(f"lr must be > 0, got {self.lr!r}")
        if not 0 <= self.beta1 < 1:
            problems.append(f"beta1 must be in [0, 1), got {self.beta1!r}")
        if not 0 <= self.ema_decay < 1:
            problems.append(f"ema_decay must be in [0, 1), got {self.ema_decay!r}")
        if problems:
            raise ValueError("invalid PriorConfig: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PriorConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown PriorConfig keys {unknown}; known: {sorted(known)}")
        return cls(**data)


class Generator(nn.Module):
    """z (B, latent_dim) → Linear → (4w, s/4, s/4) → ConvT ×2 (+ a 3×3 refinement) → sigmoid image."""

    def __init__(self, cfg: PriorConfig):
        super().__init__()
        w, base = cfg.gen_width, cfg.image_size // 4
        self.latent_dim = cfg.latent_dim
        self.project = nn.Sequential(
            nn.Linear(cfg.latent_dim, 4 * w * base * base, bias=False),
            nn.BatchNorm1d(4 * w * base * base), nn.ReLU(inplace=True),
            nn.Unflatten(1, (4 * w, base, base)),
        )  # fmt: skip
        self.body = nn.Sequential(
            nn.ConvTranspose2d(4 * w, 2 * w, 4, stride=2, padding=1, bias=False),  # (2w, s/2, s/2)
            nn.BatchNorm2d(2 * w), nn.ReLU(inplace=True),
            nn.Conv2d(2 * w, w, 3, padding=1, bias=False),
            nn.BatchNorm2d(w), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(w, cfg.channels, 4, stride=2, padding=1),  # (C, s, s)
            nn.Sigmoid(),
        )  # fmt: skip

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(self.project(z))


class Discriminator(nn.Module):
    """Image → realism logit (B,). No BatchNorm: attacks use D on single samples in eval mode."""

    def __init__(self, cfg: PriorConfig):
        super().__init__()
        w, base = cfg.disc_width, cfg.image_size // 4
        self.net = nn.Sequential(
            nn.Conv2d(cfg.channels, w, 4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(w, 2 * w, 4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True),
            nn.Flatten(), nn.Linear(2 * w * base * base, 1),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Inputs are in [0, 1]; centring them helps the first layer without another norm layer.
        return self.net(x * 2 - 1).squeeze(1)


@dataclass
class ImagePrior:
    """A trained, frozen generator/discriminator pair; what GAN attacks take as ``generator=``.

    Both networks are put in eval mode with parameter gradients off: attacks differentiate with
    respect to latents only.
    """

    generator: Generator
    discriminator: Discriminator
    config: PriorConfig

    def __post_init__(self) -> None:
        for net in (self.generator, self.discriminator):
            net.eval()
            for param in net.parameters():
                param.requires_grad_(False)

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @torch.no_grad()
    def sample(self, n: int, seed: int = 0) -> torch.Tensor:
        """``n`` images (n, C, H, W) in [0, 1] from z ~ N(0, I), reproducible through ``seed``."""
        z = torch.randn(n, self.latent_dim, generator=torch.Generator().manual_seed(seed))
        return self.generator(z)
