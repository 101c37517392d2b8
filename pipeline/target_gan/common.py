"""What both target-specific GANs share: pseudo-labels, architecture, the adversarial training loop."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from pipeline.distributed import batchnorm_across_ranks, descend, is_primary, require_row_per_rank
from pipeline.models import Classifier
from pipeline.prior.ema import recalibrate_batchnorm, update_ema
from pipeline.prior.networks import ImagePrior, PriorConfig
from pipeline.runtime import current_runtime, on_device
from pipeline.target_gan.config import GANSection
from pipeline.target_gan.networks import ConditionalPrior, KEDMIPrior


@dataclass
class TargetGANResult:
    """The trained, frozen prior; per-iteration losses (names depend on the GAN); wall-clock seconds."""

    prior: ConditionalPrior | KEDMIPrior
    history: dict[str, list[float]]
    seconds: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)


def frozen_target(model: Classifier) -> Classifier:
    """Eval-mode copy without parameter gradients (the GAN never changes the target)."""
    if not isinstance(model, Classifier):
        raise TypeError(f"target_model must be a pipeline.models.Classifier, got {type(model).__name__}")
    frozen = copy.deepcopy(model).eval()
    frozen.requires_grad_(False)
    return frozen


@torch.no_grad()
def target_probabilities(model: nn.Module, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """(N, K) softmax probabilities of the target, in eval mode, batch by batch."""
    was_training = model.training
    model.eval()
    try:
        return torch.cat([model(chunk).softmax(1) for chunk in images.split(batch_size)])
    finally:
        model.train(was_training)


def pseudo_label(
    target_model: nn.Module, public_images_float: torch.Tensor, classes: Sequence[int], top_k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """PLG-MI's pseudo-labels: per class, the ``top_k`` public images the target is surest of.

    Each image is assigned to the target's argmax class (so it serves at most one class), then
    each class keeps its ``top_k`` assigned images by that class's probability. A class with fewer
    assigned images keeps all of them.

    Returns:
        images (M, C, H, W) grouped class by class, most confident first, and labels (M,).
    """
    if not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k must be a positive int, got {top_k!r}")
    probs = target_probabilities(target_model, public_images_float)
    predicted = probs.argmax(1)
    chosen, labels = [], []
    for c in classes:
        members = torch.nonzero(predicted == c).squeeze(1)
        order = torch.argsort(probs[members, c], descending=True, stable=True)[:top_k]
        chosen.append(members[order])
        labels.append(torch.full((len(order),), int(c), dtype=torch.int64))
    index = torch.cat(chosen)
    return public_images_float[index], torch.cat(labels)


def architecture(target_model: Classifier, cfg: GANSection, warm_start: ImagePrior | None) -> PriorConfig:
    """The GAN's PriorConfig: image shape from the target, sizes from ``cfg``, checked against the warm start."""
    if cfg.warm_start and warm_start is None:
        raise ValueError("warm_start is true in the config, but no generic prior was given (warm_start=None)")
    if not cfg.warm_start and warm_start is not None:
        raise ValueError("warm_start is false in the config, but a generic prior was given; pass None")
    model_cfg = target_model.config
    arch = PriorConfig(
        image_size=model_cfg.image_size, channels=model_cfg.in_channels, latent_dim=cfg.latent_dim,
        gen_width=cfg.gen_width, disc_width=cfg.disc_width, stages=cfg.stages, batch_size=cfg.batch_size,
        seed=cfg.seed,
    )  # fmt: skip
    if warm_start is not None:
        keys = ("image_size", "channels", "latent_dim", "gen_width", "disc_width", "stages")
        wrong = [f"{k}: {getattr(arch, k)} vs prior {getattr(warm_start.config, k)}"
                 for k in keys if getattr(arch, k) != getattr(warm_start.config, k)]  # fmt: skip
        if wrong:
            raise ValueError("warm-start prior does not match the target/config architecture: " + "; ".join(wrong))
    return arch


LossStep = Callable[[], tuple[torch.Tensor, dict[str, torch.Tensor]]]


def train_adversarially(
    gen: nn.Module, disc: nn.Module, cfg: GANSection, *, discriminator_step: LossStep, generator_step: LossStep,
    draw: Callable[[nn.Module], object], desc: str, progress: bool,
) -> tuple[nn.Module, dict[str, list[float]]]:  # fmt: skip
    """The loop both target-specific GANs share: ``n_dis`` D steps per G step, Adam, EMA, BN recalibration.

    Each step callable draws its own batch and returns (the loss to minimise, the values to record);
    the recorded values, D's first, make the history, one value per generator iteration. New tensors
    default to the runtime's device (the callers put the networks and data there). Returns the
    generator attacks use (the EMA copy when ``ema_decay`` > 0) and that history.

    Under ``torchrun`` the step callables draw every batch whole (the same random stream on every
    rank), compute on this rank's rows and return its part of the loss (``pipeline.distributed``)
    and the whole batch's values to record; here batch norm reduces over all ranks and each step
    averages the gradients over ranks (:func:`~pipeline.distributed.descend`), so weights, Adam
    states and the EMA copy stay the same on every rank. Spectral norm needs nothing more: its
    power iteration reads only the weight, once per training forward, and every rank makes the
    same forwards on the same weights. ``draw`` (BN recalibration) runs whole batches on every rank.
    """
    require_row_per_rank(cfg.batch_size, desc)
    opt_g = torch.optim.Adam(gen.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2))
    opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2))
    ema = copy.deepcopy(gen) if cfg.ema_decay > 0 else gen  # copied before BN is swapped: a plain generator
    history: dict[str, list[float]] = {}
    gen.train()
    disc.train()
    runtime = current_runtime()
    bar = tqdm(total=cfg.iterations, desc=desc, disable=not (progress and is_primary()), leave=False, mininterval=2.0)
    with on_device(runtime):
        with batchnorm_across_ranks(nn.ModuleList([gen, disc]), runtime.device):
            for _ in range(cfg.iterations):
                for _ in range(cfg.n_dis):
                    d_loss, d_record = discriminator_step()
                    descend(opt_d, d_loss)
                g_loss, g_record = generator_step()
                descend(opt_g, g_loss)
                if ema is not gen:
                    update_ema(ema, gen, cfg.ema_decay)
                recorded = {name: value.item() for name, value in {**d_record, **g_record}.items()}
                for name, value in recorded.items():
                    history.setdefault(name, []).append(value)
                bar.update(1)
                bar.set_postfix({name: f"{value:.3f}" for name, value in recorded.items()}, refresh=False)
        bar.close()
        recalibrate_batchnorm(ema, draw)
    return ema, history


def as_float_images(images_uint8: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """uint8 (N, C, H, W) of the target's image shape → float in [0, 1]."""
    tensor = torch.as_tensor(images_uint8)
    if tensor.dtype != torch.uint8:
        raise TypeError(f"public images must be uint8 (N, C, H, W), got dtype {tensor.dtype}")
    if tensor.ndim != 4 or tuple(tensor.shape[1:]) != shape:
        raise ValueError(f"public images must have shape (N, {', '.join(map(str, shape))}), got {tuple(tensor.shape)}")
    return tensor.float().div_(255.0)
