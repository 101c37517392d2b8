"""Small pieces the fine-tune defenses share: config checks, per-step means, phase callbacks."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from pipeline.config import TrainConfig
from pipeline.defenses.registry import PhaseCallback
from pipeline.train import EpochCallback


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
