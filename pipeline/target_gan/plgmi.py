"""Train PLG-MI's conditional GAN against one target.

Paper: Yuan et al., "Pseudo Label-Guided Model Inversion Attack via Conditional Generative
Adversarial Network" (PLG-MI), AAAI 2023. The target pseudo-labels the public images (its
``top_k`` surest per private class); a class-conditional generator and a spectral-norm projection
discriminator are trained on them with the hinge loss, the generator also minimising
``alpha · max-margin(T(aug(G(z, y))), y)`` so that G(·, y) lands where the target sees class y.

Under ``torchrun`` each rank trains on its rows of every batch (``train_adversarially``). Every
loss term is a mean of per-row values (hinge, adversarial, max-margin), so each rank weights its
rows' mean by their share. The pseudo-labels are computed whole on every rank before training
(the same top-k sets as one process).
"""

from __future__ import annotations

import time

import kornia.augmentation as K
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pipeline.distributed import augment_rows, global_mean, shard, weighted_for_averaging
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


def generator_rows(batch_size: int, scored: int) -> tuple[torch.Tensor, slice]:
    """This rank's rows of a generator batch and, of them, those the target scores (they come first).

    The target scores the batch's first ``scored`` rows; each rank takes its share of those and
    its share of the rest, so the target's cost, the step's largest, splits evenly over ranks (any
    split trains the same GAN: batch norm and every loss term see the whole batch). Returns the
    rows (indices into the batch) and this rank's part of the scored rows.
    """
    mine = shard(scored)
    rest = range(scored, batch_size)[shard(batch_size - scored)]
    return torch.tensor([*range(scored)[mine], *rest], dtype=torch.int64), mine


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

        mine = shard(cfg.batch_size)  # D: every rank draws the whole batch and keeps its rows
        rows = mine.stop - mine.start
        g_rows, scored = generator_rows(cfg.batch_size, cfg.inv_batch_size)
        g_rows = g_rows.to(runtime.device)
        n_scored = scored.stop - scored.start

        def discriminator_step() -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
            index = torch.randint(0, len(real), (cfg.batch_size,))[mine]
            x, y = real[index], real_labels[index]
            fake_y = torch.randint(0, num_classes, (cfg.batch_size,))[mine]
            with torch.no_grad():
                fake = gen(torch.randn(cfg.batch_size, arch.latent_dim)[mine], fake_y)
            d_loss = F.relu(1 - disc(x, y)).mean() + F.relu(1 + disc(fake, fake_y)).mean()
            return weighted_for_averaging(d_loss, rows, cfg.batch_size), {
                "d_loss": global_mean(d_loss, rows, cfg.batch_size)
            }

        def generator_step() -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
            fake_y = torch.randint(0, num_classes, (cfg.batch_size,))[g_rows]
            fake = gen(torch.randn(cfg.batch_size, arch.latent_dim)[g_rows], fake_y)
            g_adv = -disc(fake, fake_y).mean()
            # The target's forward/backward is the costly part: it scores the first inv_batch_size rows only.
            views = augment_rows(augment, fake[:n_scored], scored, cfg.inv_batch_size)
            g_inv = max_margin_loss(target(views), fake_y[:n_scored]).mean() if n_scored else fake.new_zeros(())
            adv_rows, inv_rows = (len(g_rows), cfg.batch_size), (n_scored, cfg.inv_batch_size)  # (here, in all)
            g_loss = weighted_for_averaging(g_adv, *adv_rows) + cfg.alpha * weighted_for_averaging(g_inv, *inv_rows)
            return g_loss, {"g_adv": global_mean(g_adv, *adv_rows), "g_inv": global_mean(g_inv, *inv_rows)}

        def draw(g: nn.Module) -> None:
            g(torch.randn(cfg.batch_size, arch.latent_dim), torch.randint(0, num_classes, (cfg.batch_size,)))

        ema, history = train_adversarially(
            gen, disc, cfg, discriminator_step=discriminator_step, generator_step=generator_step, draw=draw,
            desc="plgmi gan", progress=progress,
        )  # fmt: skip
    prior = ConditionalPrior(ema.cpu(), disc.cpu(), arch, num_classes)  # freezes both networks
    info = {"pseudo_labels_per_class": counts, "warm_start": warm_start is not None}
    return TargetGANResult(prior, history, seconds=time.perf_counter() - start, info=info)
