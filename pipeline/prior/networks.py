"""DCGAN-style generator and discriminator used as the attacker's image prior.

Sized for CPU: at the default widths, 16 epochs on 10k 28×28 grayscale images take about two
minutes on one core (one intra-op thread; on a shared two-core machine two threads are slower). The
generator maps z ~ N(0, I) to images in [0, 1] (sigmoid output), the same range as every image in
the pipeline, so attacks can feed G(z) straight into the target.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from pydantic import Field, SerializerFunctionWrapHandler, model_serializer, model_validator
from torch import nn

from pipeline.config import Section

DEFAULT_STAGES = 2  # the layout before ``stages`` existed (28 px from a 7 x 7 map, 64 px from 16 x 16)


def omit_default_stages(dump: dict[str, Any], stages: int) -> dict[str, Any]:
    """Leave the default ``stages`` out of a dump: configs (and checkpoints) from before the field keep their bytes."""
    if stages == DEFAULT_STAGES:
        dump.pop("stages", None)
    return dump


class PriorConfig(Section):
    """The ``prior`` params section: architecture and training of the GAN prior.

    Stored inside every prior (and target GAN) checkpoint as ``model_dump()``; ``stages`` is stored
    only when it is not the default, so the checkpoints of the default layout stay byte-identical to
    those written before the field existed (and load with it as 2).
    """

    image_size: int = Field(28, gt=0)
    channels: int = Field(1, gt=0)
    latent_dim: int = Field(64, gt=0)
    gen_width: int = Field(16, gt=0)
    disc_width: int = Field(16, gt=0)
    stages: int = Field(DEFAULT_STAGES, ge=1)  # stride-2 up/down-sampling stages: image_size = base_size · 2^stages
    epochs: int = Field(16, gt=0)
    batch_size: int = Field(64, gt=0)
    lr: float = Field(5e-4, gt=0)
    beta1: float = Field(0.5, ge=0, lt=1)
    ema_decay: float = Field(0.999, ge=0, lt=1)  # the generator returned is an EMA (0 = the last weights)
    seed: int = 0

    @model_validator(mode="after")
    def _stages_fit_the_image(self) -> PriorConfig:
        if self.image_size % 2**self.stages:
            raise ValueError(
                f"image_size must be divisible by 2^stages = {2**self.stages} ({self.stages} stride-2 stages), "
                f"got image_size {self.image_size}"
            )
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return omit_default_stages(handler(self), self.stages)

    @property
    def base_size(self) -> int:
        """Side of the generator's first feature map (and of the discriminator's last)."""
        return self.image_size // 2**self.stages


def generator_layers(cfg: PriorConfig) -> Iterator[nn.Module]:
    """The generator's weighted layers in forward order, shared by the generic and conditional generators.

    The projection (Linear to 2^stages·w channels at base_size), ``stages - 1`` stride-2 ConvTs
    halving the width (down to 2w), the 3×3 refinement (2w → w) and the last stride-2 ConvT to the
    image's channels. Lazy, so that the conditional generator builds each norm (its embeddings draw
    from the RNG) right after its layer, as it always has: one seed, the same initial weights.
    """
    w = cfg.gen_width
    widths = [w * 2**k for k in range(cfg.stages, 0, -1)]  # 2^stages·w, ..., 2w
    yield nn.Linear(cfg.latent_dim, widths[0] * cfg.base_size**2, bias=False)
    for wide, narrow in itertools.pairwise(widths):
        yield nn.ConvTranspose2d(wide, narrow, 4, stride=2, padding=1, bias=False)
    yield nn.Conv2d(2 * w, w, 3, padding=1, bias=False)
    yield nn.ConvTranspose2d(w, cfg.channels, 4, stride=2, padding=1)


def disc_feature_dim(cfg: PriorConfig) -> int:
    """Size of the discriminator's flattened features: 2^(stages-1)·w channels at base_size."""
    return cfg.disc_width * 2 ** (cfg.stages - 1) * cfg.base_size**2


class Generator(nn.Module):
    """z (B, latent_dim) → Linear → (2^n·w, s/2^n, s/2^n) → n stride-2 ConvTs (+ a 3×3 refinement) → image.

    n = ``stages`` (:func:`generator_layers`): each ConvT doubles the side and all but the last halve
    the width; BatchNorm + ReLU follow every layer but the last, a sigmoid the last. The default
    n = 2 is the original layout (28 px from 7 × 7 at 4w channels); the literature's DCGANs at 64 px
    start from 4 × 4 (n = 4, 16w channels).
    """

    def __init__(self, cfg: PriorConfig):
        super().__init__()
        self.latent_dim = cfg.latent_dim
        layers = generator_layers(cfg)
        linear, base = next(layers), cfg.base_size
        self.project = nn.Sequential(
            linear, nn.BatchNorm1d(linear.out_features), nn.ReLU(inplace=True),
            nn.Unflatten(1, (linear.out_features // base**2, base, base)),
        )  # fmt: skip
        hidden: list[nn.Module] = []
        for conv in itertools.islice(layers, cfg.stages):  # stages - 1 ConvTs and the refinement
            hidden += [conv, nn.BatchNorm2d(conv.out_channels), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*hidden, next(layers), nn.Sigmoid())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(self.project(z))


class Discriminator(nn.Module):
    """Image → realism logit (B,): ``stages`` stride-2 convs (C → w → 2w → … → 2^(n-1)·w), flatten, linear.

    No BatchNorm: attacks use D on single samples in eval mode.
    """

    def __init__(self, cfg: PriorConfig):
        super().__init__()
        widths = [cfg.channels] + [cfg.disc_width * 2**k for k in range(cfg.stages)]
        convs = [[nn.Conv2d(a, b, 4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True)]
                 for a, b in itertools.pairwise(widths)]  # fmt: skip
        self.net = nn.Sequential(
            *itertools.chain.from_iterable(convs), nn.Flatten(), nn.Linear(disc_feature_dim(cfg), 1)
        )

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
