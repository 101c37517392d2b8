"""DCGAN-style generator and discriminator used as the attacker's image prior.

Sized for CPU: at the default widths, 16 epochs on 10k 28×28 grayscale images take about two
minutes on one core (one intra-op thread; on a shared two-core machine two threads are slower). The
generator maps z ~ N(0, I) to images in [0, 1] (sigmoid output), the same range as every image in
the pipeline, so attacks can feed G(z) straight into the target.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from pydantic import Field, field_validator
from torch import nn

from pipeline.config import Section


class PriorConfig(Section):
    """The ``prior`` params section: architecture and training of the GAN prior.

    Stored inside every prior (and target GAN) checkpoint as ``model_dump()``.
    """

    image_size: int = Field(28, gt=0)
    channels: int = Field(1, gt=0)
    latent_dim: int = Field(64, gt=0)
    gen_width: int = Field(16, gt=0)
    disc_width: int = Field(16, gt=0)
    epochs: int = Field(16, gt=0)
    batch_size: int = Field(64, gt=0)
    lr: float = Field(5e-4, gt=0)
    beta1: float = Field(0.5, ge=0, lt=1)
    ema_decay: float = Field(0.999, ge=0, lt=1)  # the generator returned is an EMA (0 = the last weights)
    seed: int = 0

    @field_validator("image_size")
    @classmethod
    def _two_stride_2_stages(cls, value: int) -> int:
        if value % 4:
            raise ValueError(f"image_size must be divisible by 4 (two stride-2 stages), got {value}")
        return value


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
