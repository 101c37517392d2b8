"""The one training loop every stage uses (baseline, judge, CALoR's two fine-tunes, later defenses).

Data lives in memory as uint8 tensors (small images); batches are converted to float in [0, 1]
on the fly. The loop is seeded and deterministic on CPU, reports per-epoch metrics through a
callback (MLflow logging lives in the stage, not here) and stops at the first non-finite loss.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from pipeline.augment import AUGMENTATIONS
from pipeline.config import TrainConfig
from pipeline.data.parts import LabelledImages
from pipeline.evaluate import classification_metrics, predict_proba
from pipeline.seeding import seed_everything

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
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
) -> list[dict[str, float]]:
    """Train ``model`` in place; return one metrics dict per epoch.

    Per epoch: ``train_loss``, ``train_acc`` and ``train_mean_true_prob`` (running, from the
    training forward passes), ``lr``, and ``val_*`` classification metrics when ``eval_data``
    is given. Raises TrainingDivergedError on the first non-finite loss.
    """
    generator = seed_everything(cfg.seed)
    loss_fn = loss_fn or cross_entropy(cfg.label_smoothing)
    augment = AUGMENTATIONS.get(cfg.augment)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = build_optimizer(params, cfg)
    steps_per_epoch = math.ceil(len(train) / cfg.batch_size)
    scheduler = build_scheduler(optimizer, cfg, steps_per_epoch)
    history: list[dict[str, float]] = []
    bar = tqdm(total=cfg.epochs * steps_per_epoch, desc=desc, disable=not progress, unit="step", mininterval=2.0)
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        order = torch.randperm(len(train), generator=generator)
        sums = {"loss": 0.0, "correct": 0.0, "true_prob": 0.0}
        for step, start in enumerate(range(0, len(train), cfg.batch_size)):
            idx = order[start : start + cfg.batch_size]
            x = augment(to_float(train.images[idx]), generator)
            y = train.labels[idx]
            logits = model(x)
            loss = loss_fn(logits, y)
            if not torch.isfinite(loss):
                bar.close()
                raise TrainingDivergedError(
                    f"{desc}: loss became {loss.item()} at epoch {epoch}, step {step + 1} "
                    f"(lr {scheduler.get_last_lr()[0]:.3g}); lower train.lr or check the data"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            with torch.no_grad():
                probs = logits.softmax(1)
                sums["loss"] += loss.item() * len(idx)
                sums["correct"] += (logits.argmax(1) == y).sum().item()
                sums["true_prob"] += probs.gather(1, y[:, None]).sum().item()
            bar.update(1)
            bar.set_postfix(epoch=epoch, loss=f"{loss.item():.4f}", refresh=False)
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
