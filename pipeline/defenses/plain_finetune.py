"""The equal-budget control: the baseline fine-tuned with plain cross-entropy.

Not a defense. Every defense here is a fine-tune of the trained baseline, and extra epochs alone
change accuracy and confidence; comparing a defense with this control at the same TrainConfig
(e.g. CALoR's two phases' epochs and schedule combined) isolates what the defense itself costs
and buys. Also holds the small helpers the other fine-tune defenses share.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Callable

from pydantic import field_validator

from pipeline.config import Section, TrainConfig
from pipeline.defenses.registry import DefenseData, DefenseResult, PhaseCallback, register_defense
from pipeline.models import Classifier
from pipeline.train import EpochCallback, fit


def no_label_smoothing(train: TrainConfig) -> TrainConfig:
    """Refuse train.label_smoothing > 0: a defense's own loss would silently ignore it, and positive
    label smoothing helps model-inversion attackers (Struppek et al., ICLR 2024)."""
    if train.label_smoothing != 0:
        raise ValueError(
            f"label_smoothing must be 0 here (got {train.label_smoothing}): the defense sets its own loss, "
            "and positive label smoothing helps model-inversion attackers"
        )
    return train


class StepMeans:
    """Per-step scalars averaged per epoch, so a defense's own terms land in fit's history."""

    def __init__(self) -> None:
        self._sums: dict[str, float] = defaultdict(float)
        self._counts: dict[str, int] = defaultdict(int)

    def add(self, **values: float) -> None:
        for name, value in values.items():
            self._sums[name] += float(value)
            self._counts[name] += 1

    def pop(self) -> dict[str, float]:
        means = {name: self._sums[name] / self._counts[name] for name in self._sums}
        self._sums.clear()
        self._counts.clear()
        return means


def phase_callback(
    on_epoch: PhaseCallback | None, phase: str, extra: Callable[[int], dict[str, float]] | None = None
) -> EpochCallback:
    """fit's per-epoch callback: merge ``extra(epoch)`` into the epoch's metrics (fit's history keeps
    the same dict), then forward to the stage's callback for this phase, if any."""
    forward = on_epoch(phase) if on_epoch is not None else None

    def callback(epoch: int, metrics: dict[str, float]) -> None:
        if extra is not None:
            metrics.update(extra(epoch))
        if forward is not None:
            forward(epoch, metrics)

    return callback


class PlainFinetuneConfig(Section):
    train: TrainConfig

    _plain = field_validator("train")(no_label_smoothing)


@register_defense("plain_finetune", PlainFinetuneConfig)
def plain_finetune(
    baseline: Classifier, config: PlainFinetuneConfig, data: DefenseData, on_epoch: PhaseCallback | None = None
) -> DefenseResult:
    """Fine-tune a copy of the baseline with cross-entropy for ``config.train``; nothing else."""
    model = copy.deepcopy(baseline)
    history = fit(
        model, data.train, config.train, eval_data=data.test,
        on_epoch=phase_callback(on_epoch, "plain_finetune"), desc="plain fine-tune",
    )  # fmt: skip
    report = {"loss": "cross_entropy", "epochs": config.train.epochs}
    return DefenseResult(model=model, history={"plain_finetune": history}, report=report)
