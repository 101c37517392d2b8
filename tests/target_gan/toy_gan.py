"""Tiny target-specific priors for tests: untrained networks at toy size, and perfect template priors."""

from __future__ import annotations

import torch
from torch import nn

from pipeline.target_gan.networks import ConditionalPrior, KEDMIPrior, build_kedmi_networks, build_plgmi_networks
from tests.attacks import toy


def tiny_conditional_prior(seed: int = 0, num_classes: int = toy.NUM_CLASSES) -> ConditionalPrior:
    """Untrained PLG-MI pair warm-started from the untrained tiny generic prior."""
    generic = toy.untrained_prior(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        gen, disc = build_plgmi_networks(generic.config, num_classes, generic)
    return ConditionalPrior(gen, disc, generic.config, num_classes)


def tiny_kedmi_prior(seed: int = 0, num_classes: int = toy.NUM_CLASSES) -> KEDMIPrior:
    generic = toy.untrained_prior(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        gen, disc = build_kedmi_networks(generic.config, num_classes, generic)
    return KEDMIPrior(gen, disc, generic.config, num_classes)


class ConditionalTemplateGenerator(toy.TemplateGenerator):
    """G(z, y) that ignores y: the attack, not the GAN, must find the class (a fair test of the search)."""

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return super().forward(z)


class NeutralProjection(nn.Module):
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x.new_zeros(len(x))


class NeutralSemiSupervised(nn.Module):
    """Every image equally real and of no particular class: the prior term carries no information."""

    def class_logits(self, x: torch.Tensor) -> torch.Tensor:
        return x.new_zeros(len(x), toy.NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.new_zeros(len(x), toy.NUM_CLASSES + 1)


def template_conditional_prior() -> ConditionalPrior:
    cfg = toy.tiny_prior_config(latent_dim=8)
    return ConditionalPrior(ConditionalTemplateGenerator(cfg.latent_dim), NeutralProjection(), cfg, toy.NUM_CLASSES)  # type: ignore[arg-type]


def template_kedmi_prior() -> KEDMIPrior:
    cfg = toy.tiny_prior_config(latent_dim=8)
    return KEDMIPrior(toy.TemplateGenerator(cfg.latent_dim), NeutralSemiSupervised(), cfg, toy.NUM_CLASSES)  # type: ignore[arg-type]
