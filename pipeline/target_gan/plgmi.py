"""Train PLG-MI's conditional GAN against one target.

Paper: Yuan et al., "Pseudo Label-Guided Model Inversion Attack via Conditional Generative
Adversarial Network" (PLG-MI), AAAI 2023. The target pseudo-labels the public images (its
``top_k`` surest per private class); a class-conditional generator and a spectral-norm projection
discriminator are trained on them with the hinge loss, the generator also minimising
``alpha · max-margin(T(aug(G(z, y))), y)`` so that G(·, y) lands where the target sees class y.
"""

from __future__ import annotations

import time

import kornia.augmentation as K
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pipeline.models import Classifier
from pipeline.prior.networks import ImagePrior
from pipeline.runtime import current_runtime, gan_threads, torch_threads
from pipeline.seeding import seeded_rng
from pipeline.target_gan.common import (
    TargetGANResult,
    architecture,
    as_float_images,
    frozen_target,
    pseudo_label,
    train_adversarially,
)
from pipeline.target_gan.config import PLGMISection
from pipeline.target_gan.networks import ConditionalPrior, build_plgmi_networks


def max_margin_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per sample −f_y + max_{j≠y} f_j (the same loss as ``pipeline.attacks.losses.max_margin``)."""
    true = logits.gather(1, labels.unsqueeze(1)).squeeze(1)
    others = logits.scatter(1, labels.unsqueeze(1), float("-inf"))
    return others.max(1).values - true


def plgmi_augmentation(size: int, crop_min: float, degrees: float) -> nn.Module:
    """PLG-MI's views: random resized crop (crop_min–1), horizontal flip, small rotation (kornia)."""
    return nn.Sequential(
        K.RandomResizedCrop((size, size), scale=(crop_min, 1.0), p=1.0),
        K.RandomHorizontalFlip(p=0.5),
        K.RandomRotation(degrees=degrees, p=1.0),
    )


def train_plgmi(
    target_model: Classifier,
    public_uint8: np.ndarray | torch.Tensor,
    cfg: PLGMISection,
    warm_start: ImagePrior | None,
    progress: bool = True,
    num_threads: int | None = None,
) -> TargetGANResult:
    """Pseudo-label the public images with the target, then fit G(z, y) and D(x, y).

    Deterministic on CPU for ``cfg.seed``; the caller's RNG state is left untouched. History keys:
    ``d_loss`` (hinge), ``g_adv`` (−D(G(z, y), y)), ``g_inv`` (max-margin of the target), one
    value per generator iteration. ``info["pseudo_labels_per_class"]`` counts the kept images.
    """
    target = frozen_target(target_model)
    arch = architecture(target, cfg, warm_start)
    shape = (arch.channels, arch.image_size, arch.image_size)
    public = as_float_images(public_uint8, shape)
    num_classes = target.num_classes
    real, real_labels = pseudo_label(target, public, range(num_classes), cfg.top_k)
    if len(real) == 0:  # batches are drawn with replacement, so a few images are enough; none is not
        raise ValueError("the target pseudo-labelled no public image as one of its classes")
    counts = torch.bincount(real_labels, minlength=num_classes).tolist()

    start = time.perf_counter()
    with torch_threads(gan_threads(num_threads)), seeded_rng(cfg.seed):
        gen, disc = build_plgmi_networks(arch, num_classes, warm_start)
        augment = plgmi_augmentation(arch.image_size, cfg.aug_crop_min, cfg.aug_degrees)
        runtime = current_runtime()  # the networks, the target and the pseudo-labelled images on its device
        gen, disc, target, augment = (runtime.prepare(m) for m in (gen, disc, target, augment))
        real, real_labels = real.to(runtime.device), real_labels.to(runtime.device)

        def discriminator_step() -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
            index = torch.randint(0, len(real), (cfg.batch_size,))
            x, y = real[index], real_labels[index]
            fake_y = torch.randint(0, num_classes, (cfg.batch_size,))
            with torch.no_grad():
                fake = gen(torch.randn(cfg.batch_size, arch.latent_dim), fake_y)
            d_loss = F.relu(1 - disc(x, y)).mean() + F.relu(1 + disc(fake, fake_y)).mean()
            return d_loss, {"d_loss": d_loss}

        def generator_step() -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
            fake_y = torch.randint(0, num_classes, (cfg.batch_size,))
            fake = gen(torch.randn(cfg.batch_size, arch.latent_dim), fake_y)
            g_adv = -disc(fake, fake_y).mean()
            scored = slice(0, cfg.inv_batch_size)  # the target's forward/backward is the costly part
            g_inv = max_margin_loss(target(augment(fake[scored])), fake_y[scored]).mean()
            return g_adv + cfg.alpha * g_inv, {"g_adv": g_adv, "g_inv": g_inv}

        def draw(g: nn.Module) -> None:
            g(torch.randn(cfg.batch_size, arch.latent_dim), torch.randint(0, num_classes, (cfg.batch_size,)))

        ema, history = train_adversarially(
            gen, disc, cfg, discriminator_step=discriminator_step, generator_step=generator_step, draw=draw,
            desc="plgmi gan", progress=progress,
        )  # fmt: skip
    prior = ConditionalPrior(ema.cpu(), disc.cpu(), arch, num_classes)  # freezes both networks
    info = {"pseudo_labels_per_class": counts, "warm_start": warm_start is not None}
    return TargetGANResult(prior, history, seconds=time.perf_counter() - start, info=info)
