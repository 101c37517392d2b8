"""Target-specific GANs: PLG-MI's conditional pair and KED-MI's semi-supervised pair.

Both are built around the generic prior's DCGAN layers (``pipeline.prior.networks``) so that they
can be warm-started from it: the conditional generator is the generic generator with every
BatchNorm made class-conditional (per-class scale/shift initialised to the generic affine, so a
warm-started G(z, y) equals the generic G(z) for every y), and both discriminators reuse the
generic discriminator's convolutional body.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from pipeline.prior.networks import (
    Discriminator,
    Generator,
    ImagePrior,
    PriorConfig,
    disc_feature_dim,
    generator_layers,
)


class ConditionalBatchNorm(nn.Module):
    """BatchNorm without affine, then a per-class scale and shift looked up from ``y``."""

    def __init__(self, num_features: int, num_classes: int, dims: int):
        super().__init__()
        self.norm = (nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d)(num_features, affine=False)
        self.scale = nn.Embedding(num_classes, num_features)
        self.shift = nn.Embedding(num_classes, num_features)
        nn.init.ones_(self.scale.weight)
        nn.init.zeros_(self.shift.weight)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        shape = (len(y), -1) + (1,) * (x.ndim - 2)
        return self.norm(x) * self.scale(y).view(shape) + self.shift(y).view(shape)

    @torch.no_grad()
    def copy_from(self, bn: nn.modules.batchnorm._BatchNorm) -> None:
        """Every class gets ``bn``'s affine; running statistics are copied too."""
        self.norm.running_mean.copy_(bn.running_mean)
        self.norm.running_var.copy_(bn.running_var)
        self.norm.num_batches_tracked.copy_(bn.num_batches_tracked)
        self.scale.weight.copy_(bn.weight.expand_as(self.scale.weight))
        self.shift.weight.copy_(bn.bias.expand_as(self.shift.weight))


class ConditionalGenerator(nn.Module):
    """G(z, y): the generic ``Generator``'s layers with class-conditional BatchNorm (PLG-MI).

    Modules are named ``linear``, ``bn0``, then ``up1``/``bn1`` … ``up{n-1}``/``bn{n-1}``, ``refine``/
    ``bn{n}`` and the last ConvT ``up{n}`` (n = ``stages``), so that the default two stages keep
    the state_dict names of the checkpoints written before the stage count existed.
    """

    def __init__(self, cfg: PriorConfig, num_classes: int):
        super().__init__()
        self.latent_dim = cfg.latent_dim
        self.num_classes = num_classes
        layers = generator_layers(cfg)
        self.linear, base = next(layers), cfg.base_size
        self.bn0 = ConditionalBatchNorm(self.linear.out_features, num_classes, dims=1)
        self.unflatten = nn.Unflatten(1, (self.linear.out_features // base**2, base, base))
        self._hidden = [f"up{i}" for i in range(1, cfg.stages)] + ["refine"]  # each followed by bn{i}, ReLU
        for i, name in enumerate(self._hidden, start=1):
            conv = next(layers)
            self.add_module(name, conv)
            self.add_module(f"bn{i}", ConditionalBatchNorm(conv.out_channels, num_classes, dims=2))
        self._last = f"up{cfg.stages}"
        self.add_module(self._last, next(layers))

    def _blocks(self) -> list[tuple[nn.Module, ConditionalBatchNorm]]:
        """(conv, its conditional BN) for every layer but the last, in forward order."""
        return [(getattr(self, name), getattr(self, f"bn{i}")) for i, name in enumerate(self._hidden, start=1)]

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.unflatten(torch.relu(self.bn0(self.linear(z), y)))
        for conv, bn in self._blocks():
            h = torch.relu(bn(conv(h), y))
        return torch.sigmoid(getattr(self, self._last)(h))

    @torch.no_grad()
    def warm_start(self, gen: Generator) -> None:
        """Copy the generic generator's weights (layer for layer) into this one; the stage counts must agree."""
        convs = [m for m in gen.body if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
        norms = [m for m in gen.body if isinstance(m, nn.BatchNorm2d)]
        if len(convs) != len(self._hidden) + 1:
            raise ValueError(f"the generic generator has {len(convs) - 1} stages, this one {len(self._hidden)}")
        self.linear.weight.copy_(gen.project[0].weight)
        self.bn0.copy_from(gen.project[1])
        for (conv, bn), source, norm in zip(self._blocks(), convs[:-1], norms, strict=True):
            conv.load_state_dict(source.state_dict())
            bn.copy_from(norm)
        getattr(self, self._last).load_state_dict(convs[-1].state_dict())


def _disc_body(cfg: PriorConfig, source: Discriminator | None) -> nn.Sequential:
    """The generic discriminator's strided convs (+ LeakyReLU, flatten), copied from ``source``."""
    body = Discriminator(cfg).net[:-1] if source is None else source.net[:-1]
    return nn.Sequential(*(_copy_module(m) for m in body))


def _copy_module(module: nn.Module) -> nn.Module:
    clone = copy.deepcopy(module)
    for param in clone.parameters():
        param.requires_grad_(True)
    return clone


class ProjectionDiscriminator(nn.Module):
    """D(x, y) = ψ(φ(x)) + ⟨embed(y), φ(x)⟩ with spectral norm on every layer (hinge-loss critic).

    Paper: Miyato & Koyama, "cGANs with Projection Discriminator", ICLR 2018 (as used by PLG-MI).
    """

    def __init__(self, cfg: PriorConfig, num_classes: int, warm_start: Discriminator | None = None):
        super().__init__()
        body = _disc_body(cfg, warm_start)
        for index, layer in enumerate(body):
            if isinstance(layer, nn.Conv2d):
                body[index] = spectral_norm(layer)
        self.body = body
        head = nn.Linear(disc_feature_dim(cfg), 1)
        if warm_start is not None:
            head.load_state_dict(warm_start.net[-1].state_dict())
            head.requires_grad_(True)
        self.head = spectral_norm(head)
        embed = nn.Embedding(num_classes, disc_feature_dim(cfg))
        nn.init.normal_(embed.weight, std=0.02)
        self.embed = spectral_norm(embed)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x * 2 - 1)  # same input centring as the generic discriminator

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.features(x)
        return self.head(h).squeeze(1) + (self.embed(y) * h).sum(1)


class SemiSupervisedDiscriminator(nn.Module):
    """K+1 outputs: K class logits learnt from the target's soft labels, and a "fake" logit fixed at 0.

    Paper: Salimans et al., "Improved Techniques for Training GANs", NeurIPS 2016 (as used by
    KED-MI). With the fake logit fixed, p(real | x) = σ(lse(l_1..K)): the realism score of the
    log-sum-exp formulation.
    """

    def __init__(self, cfg: PriorConfig, num_classes: int, warm_start: Discriminator | None = None):
        super().__init__()
        self.num_classes = num_classes
        self.body = _disc_body(cfg, warm_start)
        self.classifier = nn.Linear(disc_feature_dim(cfg), num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x * 2 - 1)

    def class_logits(self, x: torch.Tensor) -> torch.Tensor:
        """(B, K) logits of the K real classes."""
        return self.classifier(self.features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, K + 1): the K class logits and the fake logit (0)."""
        logits = self.class_logits(x)
        return torch.cat([logits, logits.new_zeros(len(logits), 1)], dim=1)


def realness(class_logits: torch.Tensor) -> torch.Tensor:
    """log-odds of "real" for (B, K) class logits: lse over the K classes (fake logit 0)."""
    return torch.logsumexp(class_logits, dim=1)


def _freeze(*nets: nn.Module) -> None:
    for net in nets:
        net.eval()
        for param in net.parameters():
            param.requires_grad_(False)


class _FrozenPair:
    """What both target-specific priors share: frozen networks, latent size and image shape from ``config``."""

    generator: nn.Module
    discriminator: nn.Module
    config: PriorConfig  # architecture (latent size, widths, image shape)

    def __post_init__(self) -> None:
        _freeze(self.generator, self.discriminator)

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.config.channels, self.config.image_size, self.config.image_size)


@dataclass
class ConditionalPrior(_FrozenPair):
    """PLG-MI's trained, frozen pair: G(z, y) and the projection discriminator."""

    kind: ClassVar[str] = "plgmi"

    generator: ConditionalGenerator
    discriminator: ProjectionDiscriminator
    config: PriorConfig
    num_classes: int

    @torch.no_grad()
    def sample(self, labels: torch.Tensor, seed: int = 0) -> torch.Tensor:
        """One image per entry of ``labels`` (N,), z ~ N(0, I) reproducible through ``seed``."""
        z = torch.randn(len(labels), self.latent_dim, generator=torch.Generator().manual_seed(seed))
        return self.generator(z, labels)


@dataclass
class KEDMIPrior(_FrozenPair):
    """KED-MI's trained, frozen pair: G(z) and the K+1-output semi-supervised discriminator."""

    kind: ClassVar[str] = "kedmi"

    generator: Generator
    discriminator: SemiSupervisedDiscriminator
    config: PriorConfig
    num_classes: int

    @torch.no_grad()
    def sample(self, n: int, seed: int = 0) -> torch.Tensor:
        z = torch.randn(n, self.latent_dim, generator=torch.Generator().manual_seed(seed))
        return self.generator(z)


def build_plgmi_networks(
    cfg: PriorConfig, num_classes: int, warm_start: ImagePrior | None
) -> tuple[ConditionalGenerator, ProjectionDiscriminator]:
    """Fresh (trainable) PLG-MI pair, copied from the generic prior when ``warm_start`` is given."""
    gen = ConditionalGenerator(cfg, num_classes)
    if warm_start is not None:
        gen.warm_start(warm_start.generator)
    return gen, ProjectionDiscriminator(cfg, num_classes, warm_start.discriminator if warm_start else None)


def build_kedmi_networks(
    cfg: PriorConfig, num_classes: int, warm_start: ImagePrior | None
) -> tuple[Generator, SemiSupervisedDiscriminator]:
    """Fresh (trainable) KED-MI pair, copied from the generic prior when ``warm_start`` is given."""
    gen = Generator(cfg)
    if warm_start is not None:
        gen.load_state_dict(warm_start.generator.state_dict())
    return gen, SemiSupervisedDiscriminator(cfg, num_classes, warm_start.discriminator if warm_start else None)
