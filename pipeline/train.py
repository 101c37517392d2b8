"""The one training loop every stage uses (baseline, judge, CALoR's two fine-tunes, later defenses).

Data lives in memory as uint8 tensors (small images); batches are converted to float in [0, 1]
on the fly. The loop is seeded and deterministic on CPU, reports per-epoch metrics through a
callback (MLflow logging lives in the stage, not here) and stops at the first non-finite loss.

It runs where the stage's runtime says (``pipeline.runtime``: device, autocast, channels-last,
compile) and, under ``torchrun``, as DistributedDataParallel: every rank draws the same global
batch and augmentation as a single process would and trains on its slice of it, batch norm reduced
across ranks, so N processes train the model one would (up to float summation order). A loss with
a term that couples the rows (BiDO's HSIC) says which part is which (:class:`SplitLoss`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from pipeline.augment import AUGMENTATIONS
from pipeline.config import TrainConfig
from pipeline.data.parts import LabelledImages
from pipeline.distributed import (
    all_reduce_sum,
    batchnorm_across_ranks,
    global_mean,
    is_primary,
    shard,
    weighted_for_averaging,
    world_size,
)
from pipeline.evaluate import classification_metrics, predict_proba
from pipeline.runtime import Runtime, current_runtime
from pipeline.seeding import seed_everything


class SplitLoss(NamedTuple):
    """A loss with a term that couples the rows of a batch, in the two parts ranks weight differently.

    Under torchrun a rank holds a slice of the batch (``pipeline.distributed``'s weighting rule):
    ``row_mean``, a mean over this rank's rows, is weighted by the rank's share of them;
    ``coupled`` is a term of the whole batch (from ``gather_rows`` or ``batch_mean``), the same
    on every rank, and enters each rank's objective once, unweighted. The loss is their sum.
    """

    row_mean: torch.Tensor
    coupled: torch.Tensor


LossFn = Callable[[torch.Tensor, torch.Tensor], "torch.Tensor | SplitLoss"]
EpochCallback = Callable[[int, dict[str, float]], None]


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite: continuing would only write a broken checkpoint."""


def to_float(images: torch.Tensor) -> torch.Tensor:
    return images.float().div_(255.0)


def cross_entropy(label_smoothing: float = 0.0) -> LossFn:
    return lambda logits, y: F.cross_entropy(logits, y, label_smoothing=label_smoothing)


def build_optimizer(params, cfg: TrainConfig) -> torch.optim.Optimizer:
    factories = {
        "sgd": lambda: torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay),
        "adam": lambda: torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay),
        "adamw": lambda: torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay),
    }
    return factories[cfg.optimizer]()


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int):
    """Per-step schedules, so short runs (one epoch in the smoke profile) still anneal."""
    total = cfg.epochs * steps_per_epoch
    milestones = [m * steps_per_epoch for m in cfg.step_milestones]
    factories = {
        "cosine": lambda: torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total))
        ),
        "step": lambda: torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=cfg.step_gamma),
        "onecycle": lambda: torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg.lr, total_steps=total),
        "none": lambda: torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0),
    }
    return factories[cfg.schedule]()


def fit(
    model: nn.Module,
    train: LabelledImages,
    cfg: TrainConfig,
    *,
    loss_fn: LossFn | None = None,
    eval_data: LabelledImages | None = None,
    on_epoch: EpochCallback | None = None,
    desc: str = "train",
    progress: bool = True,
    runtime: Runtime | None = None,
) -> list[dict[str, float]]:
    """Train ``model`` in place (it ends on the runtime's device); return one metrics dict per epoch.

    Per epoch: ``train_loss``, ``train_acc`` and ``train_mean_true_prob`` (running, from the
    training forward passes, over every rank's rows), ``lr``, and ``val_*`` classification metrics
    when ``eval_data`` is given. Raises TrainingDivergedError on the first non-finite loss.
    ``loss_fn`` returns a mean over the batch's rows (ranks weight their slice by its size) or,
    for a loss with a term that couples the rows, a :class:`SplitLoss`.
    """
    runtime = runtime or current_runtime()
    loss_fn = loss_fn or cross_entropy(cfg.label_smoothing)
    world = world_size()
    generator = seed_everything(cfg.seed)
    augment = AUGMENTATIONS.get(cfg.augment)
    runtime.prepare(model)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = build_optimizer(params, cfg)
    steps_per_epoch = math.ceil(len(train) / cfg.batch_size)
    scheduler = build_scheduler(optimizer, cfg, steps_per_epoch)
    scaler = runtime.grad_scaler()
    history: list[dict[str, float]] = []
    show = progress and is_primary()
    bar = tqdm(total=cfg.epochs * steps_per_epoch, desc=desc, disable=not show, unit="step", mininterval=2.0)
    with batchnorm_across_ranks(model, runtime.device):
        forward = _training_forward(model, runtime)
        for epoch in range(1, cfg.epochs + 1):
            model.train()
            order = torch.randperm(len(train), generator=generator)
            sums = {"loss": 0.0, "correct": 0.0, "true_prob": 0.0}
            for step, start in enumerate(range(0, len(train), cfg.batch_size)):
                idx = order[start : start + cfg.batch_size]
                x = augment(to_float(train.images[idx]), generator)  # the whole global batch, on every rank
                y = train.labels[idx]
                if world > 1:
                    rows = shard(len(idx))
                    x, y = x[rows], y[rows]
                x, y = runtime.batch(x), y.to(runtime.device)
                with runtime.autocast():
                    logits = forward(x)
                loss, objective = _loss_and_objective(loss_fn(logits.float(), y), len(y), len(idx))
                seen = global_mean(loss, len(y), len(idx))  # the shares sum to 1: a coupled term counts once
                if not torch.isfinite(seen):
                    bar.close()
                    raise TrainingDivergedError(
                        f"{desc}: loss became {seen.item()} at epoch {epoch}, step {step + 1} "
                        f"(lr {scheduler.get_last_lr()[0]:.3g}); lower train.lr or check the data"
                    )
                optimizer.zero_grad(set_to_none=True)
                if scaler is None:
                    objective.backward()
                    optimizer.step()
                else:
                    scaler.scale(objective).backward()
                    scaler.step(optimizer)
                    scaler.update()
                scheduler.step()
                with torch.no_grad():
                    probs = logits.float().softmax(1)
                    sums["loss"] += loss.item() * len(y)
                    sums["correct"] += (logits.argmax(1) == y).sum().item()
                    sums["true_prob"] += probs.gather(1, y[:, None]).sum().item()
                bar.update(1)
                bar.set_postfix(epoch=epoch, loss=f"{seen.item():.4f}", refresh=False)
            if world > 1:
                totals = all_reduce_sum(torch.tensor(list(sums.values()), dtype=torch.float64, device=runtime.device))
                sums = dict(zip(sums, totals.tolist(), strict=True))
            metrics = {
                "train_loss": sums["loss"] / len(train),
                "train_acc": sums["correct"] / len(train),
                "train_mean_true_prob": sums["true_prob"] / len(train),
                "lr": scheduler.get_last_lr()[0],
            }
            if eval_data is not None:
                probs = predict_proba(model, eval_data.images)
                val = classification_metrics(probs, eval_data.labels)
                metrics.update({f"val_{k}": v for k, v in val.items() if isinstance(v, float)})
            history.append(metrics)
            if on_epoch is not None:
                on_epoch(epoch, metrics)
    bar.close()
    model.eval()
    return history


def _loss_and_objective(out: torch.Tensor | SplitLoss, rows: int, total: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(this rank's loss, what it minimises so that DDP's average of the gradients is the whole batch's).

    Both are the loss itself for a plain row mean in a single process (the single-process path).
    """
    if not isinstance(out, SplitLoss):
        return out, weighted_for_averaging(out, rows, total)
    return out.row_mean + out.coupled, weighted_for_averaging(out.row_mean, rows, total) + out.coupled


def _training_forward(model: nn.Module, runtime: Runtime) -> Callable[[torch.Tensor], torch.Tensor]:
    """What a training step calls: the model, wrapped in DDP under torchrun, compiled where asked."""
    forward: nn.Module = model
    if world_size() > 1:
        device_ids = [runtime.device.index] if runtime.on_cuda else None
        forward = nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
    if runtime.compile:
        forward = torch.compile(forward)
    return forward
