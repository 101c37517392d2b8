"""The equal-budget control: the baseline fine-tuned with plain cross-entropy.

Not a defense. Every defense here is a fine-tune of the trained baseline, and extra epochs alone
change accuracy and confidence; comparing a defense with this control at the same TrainConfig
(e.g. CALoR's two phases' epochs and schedule combined) isolates what the defense itself costs
and buys.
"""

from __future__ import annotations

import copy

from pydantic import field_validator

from pipeline.config import TrainConfig
from pipeline.defenses.common import no_label_smoothing, phase_callback
from pipeline.defenses.registry import DefenseConfig, DefenseData, DefenseResult, PhaseCallback, register_defense
from pipeline.models import Classifier
from pipeline.train import fit


class PlainFinetuneConfig(DefenseConfig):
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
