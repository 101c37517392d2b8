"""Generator averaging shared by every GAN we train (the generic prior and the target-specific GANs).

Attacks run the generator in eval mode, so what they see is the exponential moving average of its
weights with batch-norm statistics recomputed for those averaged weights.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

BN_RECALIBRATION_BATCHES = 32


@torch.no_grad()
def update_ema(ema: nn.Module, net: nn.Module, decay: float) -> None:
    """``ema ← decay · ema + (1 − decay) · net``, parameter by parameter."""
    for avg, param in zip(ema.parameters(), net.parameters(), strict=True):
        avg.lerp_(param, 1 - decay)


@torch.no_grad()
def recalibrate_batchnorm(
    gen: nn.Module, draw_batch: Callable[[nn.Module], object], batches: int = BN_RECALIBRATION_BATCHES
) -> None:
    """Exact BN running averages over ``batches`` calls of ``draw_batch(gen)`` in train mode.

    Running statistics lag behind the last (averaged) weights; recomputing them is what makes the
    eval-mode generator draw what the training-mode one did.
    """
    norms = [m for m in gen.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average
    gen.train()
    for _ in range(batches):
        draw_batch(gen)
    for m, momentum in zip(norms, saved, strict=True):
        m.momentum = momentum
    gen.eval()
