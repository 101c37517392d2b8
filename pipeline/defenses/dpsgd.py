"""DP-SGD: per-sample gradient clipping plus Gaussian noise, with an RDP privacy accountant.

Papers: Abadi et al., "Deep Learning with Differential Privacy", CCS 2016 (the algorithm; Opacus
implements it); Zhang et al., "The Secret Revealer" (GMI), CVPR 2020, found it of little use
against model inversion at acceptable utility. Reported: (ε, δ), noise multiplier, clipping norm.

Why not Opacus itself: its fix for BatchNorm (ModuleValidator.fix: BN → GroupNorm) changes the
architecture, which ModelConfig cannot express, so the checkpoint could not be rebuilt. Instead
BatchNorm layers are frozen in eval mode (running statistics fixed, so every sample's output
depends on that sample only) and per-sample gradients come from torch.func (vmap of grad).
The noisy clipped gradient reaches ``fit`` through the loss: the returned loss has the batch's
CE as its value and that gradient as its gradient, so fit's optimiser, schedule and logging apply.
Under torchrun every rank draws the same noise (same seed, same draws) and adds a 1/world share of
it to the clipped sum over its rows, so DDP's average holds the one draw exactly once.

Honest limits, recorded in the report:
- Fine-tuning the baseline (the default) accounts only for this phase: the baseline and its BN
  statistics saw the private data without noise, so the released model is NOT (ε, δ)-DP.
  ``reinitialise: true`` starts from fresh weights (BN at its initial statistics) instead.
- fit draws shuffled fixed-size batches; ε uses the Poisson-subsampling RDP bound at q = B/N,
  the usual approximation (Opacus reports the same), not a proof for shuffling.
- Noise comes from torch's seeded PRNG, not a cryptographically secure one.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator
from torch import nn
from torch.func import functional_call, grad, vmap

from pipeline.config import TrainConfig
from pipeline.defenses.common import StepMeans, no_label_smoothing, phase_callback
from pipeline.defenses.registry import DefenseConfig, DefenseData, DefenseResult, PhaseCallback, register_defense
from pipeline.distributed import gather_rows, row_counts, world_size
from pipeline.models import Classifier, create_model
from pipeline.seeding import seed_everything
from pipeline.train import fit

RDP_ORDERS = tuple(range(2, 257))  # integer orders: the exact sampled-Gaussian bound applies


class DpsgdConfig(DefenseConfig):
    noise_multiplier: float = Field(1.0, gt=0)  # σ: noise std = σ · max_grad_norm on the clipped sum
    max_grad_norm: float = Field(1.0, gt=0)  # C: per-sample L2 clipping norm
    delta: float = Field(1e-5, gt=0, lt=1)
    noise_seed: int = 0
    reinitialise: bool = False
    train: TrainConfig

    _plain = field_validator("train")(no_label_smoothing)


# --- privacy accounting (Mironov, Talwar, Zhang 2019; conversion of Balle et al. 2020) -------------


def sampled_gaussian_rdp(q: float, sigma: float, order: int) -> float:
    """RDP at integer ``order`` of one step of the Poisson-subsampled Gaussian mechanism:
    log Σ_k C(α,k)(1−q)^{α−k} q^k exp((k²−k)/(2σ²)) / (α − 1)."""
    if q >= 1.0:
        return order / (2 * sigma**2)
    terms = [
        math.lgamma(order + 1) - math.lgamma(k + 1) - math.lgamma(order - k + 1)
        + (order - k) * math.log1p(-q) + k * math.log(q) + (k * k - k) / (2 * sigma**2)
        for k in range(order + 1)
    ]  # fmt: skip
    top = max(terms)
    return (top + math.log(sum(math.exp(t - top) for t in terms))) / (order - 1)


def dp_epsilon(q: float, sigma: float, steps: int, delta: float) -> tuple[float, int]:
    """(ε, best order) after ``steps`` compositions, minimised over ``RDP_ORDERS``."""
    best, best_order = math.inf, RDP_ORDERS[0]
    for order in RDP_ORDERS:
        rdp = steps * sampled_gaussian_rdp(q, sigma, order)
        eps = rdp + math.log1p(-1 / order) - (math.log(delta) + math.log(order)) / (order - 1)
        if eps < best:
            best, best_order = eps, order
    return max(best, 0.0), best_order


# --- the private gradient ---------------------------------------------------------------------------


def freeze_batchnorm(model: nn.Module) -> list[nn.Module]:
    """Put every BatchNorm in eval mode (returned so a hook can keep them there)."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.eval()
    return norms


def private_gradient(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    max_grad_norm: float,
    noise_multiplier: float,
    generator: torch.Generator,
) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """(Σ_i clip_C(g_i) + N(0, σ²C²I)) / B per trainable parameter, the per-sample losses (B,) and
    the per-sample gradient norms before clipping (B,). BatchNorm must be in eval mode.

    Under torchrun ``x`` is this rank's B_r rows and the result is (Σ_i clip_C(g_i) + noise / world) / B_r:
    a mean over its rows, which fit weights by B_r / B · world, so the average over ranks is the
    whole batch's DP gradient with the noise (the same draw on every rank) added once.
    """
    params = {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}

    def sample_loss(p: dict[str, torch.Tensor], xi: torch.Tensor, yi: torch.Tensor):
        loss = F.cross_entropy(functional_call(model, p, (xi[None],)), yi[None])
        return loss, loss

    grads, losses = vmap(grad(sample_loss, has_aux=True), in_dims=(None, 0, 0), randomness="different")(params, x, y)
    norms = torch.sqrt(sum(g.flatten(1).pow(2).sum(1) for g in grads.values()))  # (B,)
    scale = (max_grad_norm / (norms + 1e-6)).clamp(max=1.0)
    std = noise_multiplier * max_grad_norm
    noisy = {}
    for name, g in grads.items():
        clipped_sum = torch.einsum("b,b...->...", scale, g)
        noise = torch.normal(0.0, std, clipped_sum.shape, generator=generator).to(clipped_sum.device)
        noisy[name] = (clipped_sum + noise / world_size()) / x.shape[0]
    return noisy, losses.detach(), norms.detach()


class PrivateLoss:
    """fit's loss: value = the batch's CE, gradient = the DP-SGD gradient of the same batch.

    A forward pre-hook keeps BatchNorm in eval mode (fit sets train mode each epoch, and under
    torchrun swaps in cross-rank norms) and records the batch fit just fed the model, which the
    per-sample computation needs. Every rank seeds the same generator and draws the same noise.
    """

    def __init__(self, model: Classifier, config: DpsgdConfig, meter: StepMeans) -> None:
        self.model, self.config, self.meter = model, config, meter
        self.generator = torch.Generator().manual_seed(config.noise_seed)
        freeze_batchnorm(model)
        self.inputs: torch.Tensor | None = None
        self._busy = False
        self._handle = model.register_forward_pre_hook(self._before_forward)

    def _before_forward(self, module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        freeze_batchnorm(module)  # the norms the model holds now (fit swaps them under torchrun)
        if module.training and not self._busy:  # not the per-sample calls made below
            self.inputs = args[0]

    def __call__(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.inputs is None:
            raise RuntimeError("DP-SGD: no training forward pass was recorded before the loss")
        self._busy = True
        try:
            cfg = self.config
            grads, losses, norms = private_gradient(
                self.model, self.inputs, y, cfg.max_grad_norm, cfg.noise_multiplier, self.generator
            )
        finally:
            self._busy, self.inputs = False, None
        norms = gather_rows(norms, row_counts(norms))  # the whole batch's, as one process reports them
        clipped = (norms > self.config.max_grad_norm).float().mean()
        self.meter.add(train_grad_norm=norms.mean().item(), train_clipped_fraction=clipped.item())
        params = dict(self.model.named_parameters())
        surrogate = sum((params[name] * g).sum() for name, g in grads.items())
        return losses.mean() + surrogate - surrogate.detach()

    def close(self) -> None:
        self._handle.remove()


@register_defense("dpsgd", DpsgdConfig)
def dpsgd(
    baseline: Classifier, config: DpsgdConfig, data: DefenseData, on_epoch: PhaseCallback | None = None
) -> DefenseResult:
    """DP-SGD fine-tune (or, with ``reinitialise``, training from fresh weights); report (ε, δ)."""
    n, batch = len(data.train), config.train.batch_size
    if config.delta >= 1 / n:
        raise ValueError(
            f"harden.dpsgd.delta must be < 1/N = {1 / n:.3g} for N = {n} training images, got {config.delta}"
        )
    if config.reinitialise:
        seed_everything(config.train.seed)
        model = create_model(baseline.config)
    else:
        model = copy.deepcopy(baseline)
    meter = StepMeans()
    loss = PrivateLoss(model, config, meter)
    try:
        history = fit(
            model, data.train, config.train, loss_fn=loss, eval_data=data.test,
            on_epoch=phase_callback(on_epoch, "dpsgd", lambda _: meter.pop()), desc="dp-sgd",
        )  # fmt: skip
    finally:
        loss.close()
    model.eval()
    steps = config.train.epochs * math.ceil(n / batch)
    epsilon, order = dp_epsilon(min(1.0, batch / n), config.noise_multiplier, steps, config.delta)
    report = {
        "epsilon": epsilon, "delta": config.delta, "noise_multiplier": config.noise_multiplier,
        "max_grad_norm": config.max_grad_norm, "sampling_rate": min(1.0, batch / n), "steps": steps,
        "rdp_order": order, "accountant": "rdp (Poisson-subsampled Gaussian, integer orders 2-256)",
        "sampling": "shuffled fixed-size batches; epsilon uses the Poisson-subsampling bound (approximation)",
        "epsilon_scope": "whole training (fresh weights)" if config.reinitialise
        else "this fine-tune only: the baseline was trained without DP, so the released model is not (eps, delta)-DP",
        "batchnorm": "frozen in eval mode (running statistics never updated)",
        "final_clipped_fraction": history[-1]["train_clipped_fraction"],
    }  # fmt: skip
    return DefenseResult(model=model, history={"dpsgd": history}, report=report)
