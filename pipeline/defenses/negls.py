"""Negative label smoothing (NegLS): cross-entropy against (1 − α)·onehot(y) + α/C with α < 0.

Paper: Struppek, Hintersdorf, Kersting, "Be Careful What You Smooth For: Label Smoothing Can Be a
Privacy Shield but Also a Catalyst for Model Inversion Attacks", ICLR 2024. Positive α helps
attackers; negative α pushes non-target probabilities to zero, which makes the attacker's
gradients uninformative. As in the authors' schedule, training is plain CE for a warm-up (half the
run) and α is then ramped in linearly (a quarter of the run) and held. The schedule advances per
step, so even a one-epoch run applies α; the values actually used are reported per epoch.
"""

from __future__ import annotations

import copy
import math

import torch
from pydantic import Field, field_validator, model_validator

from pipeline.config import TrainConfig
from pipeline.defenses.common import no_label_smoothing, phase_callback
from pipeline.defenses.registry import DefenseConfig, DefenseData, DefenseResult, PhaseCallback, register_defense
from pipeline.models import Classifier
from pipeline.train import fit


class NegLSConfig(DefenseConfig):
    alpha: float = Field(-0.05, gt=-1)
    warmup_fraction: float = Field(0.5, ge=0, lt=1)
    ramp_fraction: float = Field(0.25, ge=0, le=1)
    train: TrainConfig

    _plain = field_validator("train")(no_label_smoothing)

    @field_validator("alpha")
    @classmethod
    def _negative(cls, value: float) -> float:
        if value > 0:
            raise ValueError(
                f"alpha must be < 0 (got {value}): positive label smoothing helps model-inversion attackers "
                "(Struppek et al., ICLR 2024); NegLS needs a negative smoothing factor such as -0.05"
            )
        if value == 0:
            raise ValueError("alpha must be < 0 (got 0): alpha = 0 is plain cross-entropy, use plain_finetune")
        return value

    @model_validator(mode="after")
    def _fits_in_training(self) -> NegLSConfig:
        if self.warmup_fraction + self.ramp_fraction > 1:
            raise ValueError(
                f"warmup_fraction + ramp_fraction must be <= 1 (got {self.warmup_fraction} + {self.ramp_fraction})"
            )
        return self


def smoothed_cross_entropy(logits: torch.Tensor, y: torch.Tensor, alpha: float) -> torch.Tensor:
    """Batch mean of −Σ_k t_k log p_k with t = (1 − α)·onehot(y) + α/C; any sign of α (torch's
    ``label_smoothing`` refuses α < 0). With α < 0 the loss is unbounded below, by design."""
    log_p = torch.log_softmax(logits, dim=1)
    nll = -log_p.gather(1, y[:, None]).squeeze(1)
    return ((1 - alpha) * nll - alpha * log_p.mean(1)).mean()


class AlphaSchedule:
    """α per optimisation step: 0 for the warm-up steps, then a linear ramp to α, then α."""

    def __init__(self, alpha: float, total_steps: int, warmup_fraction: float, ramp_fraction: float) -> None:
        self.alpha, self.total_steps = alpha, total_steps
        self.warmup_steps = round(warmup_fraction * total_steps)
        self.ramp_steps = round(ramp_fraction * total_steps)
        if self.warmup_steps >= total_steps:
            raise ValueError(
                f"harden.negls: a warm-up of {self.warmup_steps} of {total_steps} steps leaves no step with "
                "alpha != 0; lower warmup_fraction or train longer"
            )

    def __call__(self, step: int) -> float:
        """α at the 0-based ``step``; the first step after the warm-up is already negative."""
        if step < self.warmup_steps:
            return 0.0
        return self.alpha * min(1.0, (step - self.warmup_steps + 1) / max(self.ramp_steps, 1))


class ScheduledLoss:
    """fit's loss: smoothed CE at the scheduled α, recording the α each step actually used."""

    def __init__(self, schedule: AlphaSchedule) -> None:
        self.schedule = schedule
        self.used: list[float] = []

    def __call__(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        alpha = self.schedule(len(self.used))
        self.used.append(alpha)
        return smoothed_cross_entropy(logits, y, alpha)


@register_defense("negls", NegLSConfig)
def negls(
    baseline: Classifier, config: NegLSConfig, data: DefenseData, on_epoch: PhaseCallback | None = None
) -> DefenseResult:
    """Fine-tune a copy of the baseline with warm-up then negative label smoothing."""
    steps_per_epoch = math.ceil(len(data.train) / config.train.batch_size)  # fit's batching
    schedule = AlphaSchedule(
        config.alpha, config.train.epochs * steps_per_epoch, config.warmup_fraction, config.ramp_fraction
    )
    loss = ScheduledLoss(schedule)
    per_epoch: list[dict[str, float]] = []

    def epoch_alphas(epoch: int) -> dict[str, float]:
        used = loss.used[(epoch - 1) * steps_per_epoch : epoch * steps_per_epoch]
        row = {"alpha_first": used[0], "alpha_last": used[-1], "alpha_mean": sum(used) / len(used)}
        per_epoch.append({"epoch": epoch, **row})
        return {f"ls_{k}": v for k, v in row.items()}

    model = copy.deepcopy(baseline)
    history = fit(
        model, data.train, config.train, loss_fn=loss, eval_data=data.test,
        on_epoch=phase_callback(on_epoch, "negls", epoch_alphas), desc="negls: negative label smoothing",
    )  # fmt: skip
    report = {
        "alpha": config.alpha, "warmup_steps": schedule.warmup_steps, "ramp_steps": schedule.ramp_steps,
        "total_steps": schedule.total_steps, "alpha_schedule": per_epoch,
    }  # fmt: skip
    return DefenseResult(model=model, history={"negls": history}, report=report)
