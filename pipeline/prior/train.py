"""Train the GAN prior once on the public split (labels are never looked at).

Non-saturating GAN loss with Adam (DCGAN recipe): on CPU it gives recognisable 28×28 samples in a
handful of epochs, where WGAN-GP would pay a double backward per step and need many more steps.
The returned generator is an exponential moving average of the trained one (smoother samples for
free), with its BatchNorm statistics recomputed for those averaged weights.

Under ``torchrun`` every rank draws each batch and its latents as one process would and trains on
its slice of them (``pipeline.distributed``): batch norm reduced over all ranks, losses weighted by
the slice's share, gradients averaged after each backward. The weights, their Adam states and the
EMA copy thus stay the same on every rank, and N ranks train the prior one process would (up to
float summation order).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from pipeline.distributed import (
    batchnorm_across_ranks,
    descend,
    global_mean,
    is_primary,
    require_row_per_rank,
    shard,
    weighted_for_averaging,
)
from pipeline.prior.ema import recalibrate_batchnorm, update_ema
from pipeline.prior.networks import Discriminator, Generator, ImagePrior, PriorConfig
from pipeline.runtime import current_runtime, gan_threads, on_device, torch_threads
from pipeline.seeding import seeded_rng


@dataclass
class PriorResult:
    """The trained prior plus per-epoch mean losses (for plots and sanity checks)."""

    prior: ImagePrior
    d_loss: list[float] = field(default_factory=list)
    g_loss: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def generator(self) -> Generator:
        return self.prior.generator

    @property
    def discriminator(self) -> Discriminator:
        return self.prior.discriminator


def images_to_float(images_uint8: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, H, W) → float32 in [0, 1]; refuses anything else instead of guessing a scale."""
    tensor = torch.as_tensor(images_uint8)
    if tensor.dtype != torch.uint8:
        raise TypeError(f"images must be uint8 (N, C, H, W), got dtype {tensor.dtype}")
    if tensor.ndim != 4:
        raise ValueError(f"images must have shape (N, C, H, W), got {tuple(tensor.shape)}")
    return tensor.float().div_(255.0)


def train_prior(
    images_uint8: np.ndarray, cfg: PriorConfig, progress: bool = True, num_threads: int | None = None
) -> PriorResult:
    """Fit G and D on public images; deterministic on CPU for a given ``cfg.seed``.

    The global RNG is forked, so training neither depends on nor disturbs the caller's RNG state.
    Training runs on ``num_threads`` intra-op threads (None: ``pipeline.runtime.gan_threads``, i.e.
    CALOR_NUM_THREADS or one thread), restored afterwards.
    """
    with torch_threads(gan_threads(num_threads)):
        return _train(images_uint8, cfg, progress)


def _train(images_uint8: np.ndarray, cfg: PriorConfig, progress: bool) -> PriorResult:
    data = images_to_float(images_uint8)
    expected = (cfg.channels, cfg.image_size, cfg.image_size)
    if tuple(data.shape[1:]) != expected:
        raise ValueError(f"images have shape {tuple(data.shape[1:])} per sample, PriorConfig expects {expected}")
    if len(data) < cfg.batch_size:
        raise ValueError(f"need at least batch_size={cfg.batch_size} images, got {len(data)}")

    require_row_per_rank(cfg.batch_size, "prior")

    start = time.perf_counter()
    runtime = current_runtime()
    with seeded_rng(cfg.seed), on_device(runtime):  # new tensors on the runtime's device (nothing changes on a CPU)
        gen, disc = Generator(cfg).to(runtime.device), Discriminator(cfg).to(runtime.device)
        data = data.to(runtime.device)
        opt_g = torch.optim.Adam(gen.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))
        opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))
        steps_per_epoch = len(data) // cfg.batch_size  # drop the ragged last batch: BN needs full batches
        ema = copy.deepcopy(gen) if cfg.ema_decay > 0 else gen  # copied before BN is swapped: a plain generator
        d_history: list[float] = []
        g_history: list[float] = []
        gen.train()
        disc.train()
        show = progress and is_primary()
        bar = tqdm(total=cfg.epochs * steps_per_epoch, desc="prior", disable=not show, leave=False, mininterval=2.0)
        with batchnorm_across_ranks(nn.ModuleList([gen, disc]), runtime.device):
            for _epoch in range(cfg.epochs):
                d_sum, g_sum = _epoch_steps(gen, disc, ema, opt_g, opt_d, data, cfg, steps_per_epoch, bar)
                d_history.append(d_sum / steps_per_epoch)
                g_history.append(g_sum / steps_per_epoch)
        bar.close()
        # Every rank recalibrates on whole batches, outside the cross-rank norms: the same statistics as one process.
        recalibrate_batchnorm(ema, lambda g: g(torch.randn(cfg.batch_size, cfg.latent_dim)))
    prior = ImagePrior(ema.cpu(), disc.cpu(), cfg)  # freezes both networks
    return PriorResult(prior, d_history, g_history, seconds=time.perf_counter() - start)


def _epoch_steps(
    gen: Generator, disc: Discriminator, ema: Generator, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
    data: torch.Tensor, cfg: PriorConfig, steps: int, bar: tqdm,
) -> tuple[float, float]:  # fmt: skip
    """One epoch of D and G steps on this rank's slice of each batch; the sums of the whole batches' losses."""
    mine = shard(cfg.batch_size)  # every rank draws the whole batch (the same random stream) and keeps its rows
    rows = mine.stop - mine.start
    order = torch.randperm(len(data))
    d_sum = g_sum = 0.0
    for step in range(steps):
        real = data[order[step * cfg.batch_size : (step + 1) * cfg.batch_size][mine]]
        fake = gen(torch.randn(cfg.batch_size, cfg.latent_dim)[mine])
        d_loss = F.softplus(-disc(real)).mean() + F.softplus(disc(fake.detach())).mean()
        descend(opt_d, weighted_for_averaging(d_loss, rows, cfg.batch_size))
        g_loss = F.softplus(-disc(fake)).mean()  # non-saturating generator loss
        descend(opt_g, weighted_for_averaging(g_loss, rows, cfg.batch_size))
        if ema is not gen:
            update_ema(ema, gen, cfg.ema_decay)
        d_seen = global_mean(d_loss, rows, cfg.batch_size).item()
        g_seen = global_mean(g_loss, rows, cfg.batch_size).item()
        d_sum += d_seen
        g_sum += g_seen
        bar.update(1)
        bar.set_postfix(d=f"{d_seen:.3f}", g=f"{g_seen:.3f}", refresh=False)
    return d_sum, g_sum
