"""Train KED-MI's semi-supervised GAN against one target.

Paper: Chen et al., "Knowledge-Enriched Distributional Model Inversion Attacks" (KED-MI), ICCV
2021. The discriminator has K+1 outputs (K target classes + "fake", the latter fixed at 0 in the
log-sum-exp formulation) and learns the target's soft labels on every public image:

    L_D = softXEnt(D(x), T(x)) + ½[E softplus(lse D(x)) − E lse D(x) + E softplus(lse D(G(z)))]
    L_G = ‖E f_D(G(z)) − E f_D(x)‖₁ + entropy_weight · H(softmax D(G(z)))

so the discriminator distils the target's knowledge into a realism-and-class critic that the
attack later uses as its prior.

Under ``torchrun`` each rank trains on its rows of every batch (``train_adversarially``). Every
term is a mean of per-row values, weighted by the rows' share, except the feature matching, which
couples the rows (a distance between batch means): its means are reduced over all ranks
(``pipeline.distributed.batch_mean``), so every rank computes the whole batch's value. The
entropy is the mean of per-row entropies, not the entropy of a batch statistic.
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.distributed import batch_mean, global_mean, shard, weighted_for_averaging
from pipeline.models import Classifier
from pipeline.prior.networks import ImagePrior
from pipeline.runtime import current_runtime, gan_threads, torch_threads
from pipeline.seeding import seeded_rng
from pipeline.target_gan.common import (
    TargetGANResult,
    architecture,
    as_float_images,
    frozen_target,
    target_probabilities,
    train_adversarially,
)
from pipeline.target_gan.config import KEDMISection
from pipeline.target_gan.networks import KEDMIPrior, SemiSupervisedDiscriminator, build_kedmi_networks, realness


def soft_cross_entropy(class_logits: torch.Tensor, soft_labels: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of −Σ_k t_k log softmax(l)_k (the target's probabilities t as labels)."""
    return -(soft_labels * class_logits.log_softmax(1)).sum(1).mean()


def discriminator_loss(
    disc: SemiSupervisedDiscriminator, real: torch.Tensor, soft_labels: torch.Tensor, fake: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(total L_D, its soft-label term) for a batch of public images, their target probabilities, fakes."""
    logits_real = disc.class_logits(real)
    r_real, r_fake = realness(logits_real), realness(disc.class_logits(fake))
    soft = soft_cross_entropy(logits_real, soft_labels)
    unsupervised = 0.5 * (F.softplus(r_real).mean() - r_real.mean() + F.softplus(r_fake).mean())
    return soft + unsupervised, soft


def train_kedmi(
    target_model: Classifier,
    public_uint8: np.ndarray | torch.Tensor,
    cfg: KEDMISection,
    warm_start: ImagePrior | None,
    progress: bool = True,
    num_threads: int | None = None,
) -> TargetGANResult:
    """Fit G(z) and the K+1-output D on all public images labelled softly by the target.

    Deterministic on CPU for ``cfg.seed``; the caller's RNG is untouched. History keys (one value
    per generator iteration): ``d_loss``, ``d_soft`` (its soft-label term), ``g_loss``.
    """
    target = frozen_target(target_model)
    arch = architecture(target, cfg, warm_start)
    public = as_float_images(public_uint8, (arch.channels, arch.image_size, arch.image_size))
    if len(public) < cfg.batch_size:
        raise ValueError(f"need at least batch_size={cfg.batch_size} public images, got {len(public)}")
    soft_labels = target_probabilities(target, public)  # (N, K), once: the target is fixed
    num_classes = target.num_classes

    start = time.perf_counter()
    with torch_threads(gan_threads(num_threads)), seeded_rng(cfg.seed):
        gen, disc = build_kedmi_networks(arch, num_classes, warm_start)
        runtime = current_runtime()  # the networks and the labelled public images on its device
        gen, disc = runtime.prepare(gen), runtime.prepare(disc)
        images, soft = public.to(runtime.device), soft_labels.to(runtime.device)

        mine = shard(cfg.batch_size)  # every rank draws the whole batch and keeps its rows
        rows = mine.stop - mine.start

        def discriminator_step() -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
            index = torch.randint(0, len(images), (cfg.batch_size,))[mine]
            with torch.no_grad():
                fake = gen(torch.randn(cfg.batch_size, arch.latent_dim)[mine])
            d_loss, d_soft = discriminator_loss(disc, images[index], soft[index], fake)  # means over rows
            return weighted_for_averaging(d_loss, rows, cfg.batch_size), {
                "d_loss": global_mean(d_loss, rows, cfg.batch_size),
                "d_soft": global_mean(d_soft, rows, cfg.batch_size),
            }

        def generator_step() -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
            index = torch.randint(0, len(images), (cfg.batch_size,))[mine]
            fake = gen(torch.randn(cfg.batch_size, arch.latent_dim)[mine])
            feats_fake = disc.features(fake)
            with torch.no_grad():
                feats_real = disc.features(images[index])
            # Couples the rows: the whole batch's means, the same on every rank, enter each rank's loss once.
            matching = (batch_mean(feats_fake, cfg.batch_size) - batch_mean(feats_real, cfg.batch_size)).abs().mean()
            class_probs = disc.classifier(feats_fake).softmax(1)
            entropy = -(class_probs * class_probs.clamp_min(1e-12).log()).sum(1).mean()
            g_loss = matching + cfg.entropy_weight * weighted_for_averaging(entropy, rows, cfg.batch_size)
            return g_loss, {"g_loss": matching + cfg.entropy_weight * global_mean(entropy, rows, cfg.batch_size)}

        ema, history = train_adversarially(
            gen, disc, cfg, discriminator_step=discriminator_step, generator_step=generator_step,
            draw=lambda g: g(torch.randn(cfg.batch_size, arch.latent_dim)), desc="kedmi gan", progress=progress,
        )  # fmt: skip
    prior = KEDMIPrior(ema.cpu(), disc.cpu(), arch, num_classes)  # freezes both networks
    with torch.no_grad():  # how well D learnt the target's labels (a sanity figure for the report)
        agree = prior.discriminator.class_logits(public[:2000]).argmax(1) == soft_labels[:2000].argmax(1)
    agreement = float(agree.float().mean())
    info = {"warm_start": warm_start is not None, "disc_target_agreement": agreement}
    return TargetGANResult(prior, history, seconds=time.perf_counter() - start, info=info)
