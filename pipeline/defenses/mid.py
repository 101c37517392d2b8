"""MID: a variational information bottleneck before the head, trained with CE + β·KL(q(z|x) ‖ N(0, I)).

Paper: Wang, Zhang, Jia, Wang, "Improving Robustness to Model Inversion Attacks via Mutual
Information Regularization", AAAI 2021. Penalising I(x; z) through the KL bound limits how much of
the input the representation the head sees can carry, at a real utility cost (CelebA VGG16:
86% → 77.6% at β = 0.003). The backbone keeps the baseline's weights; the VIB head (K = d/2, as in
the MID code) is new. The released model uses the posterior mean, so it is deterministic.
"""

from __future__ import annotations

import copy
import dataclasses

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator

from pipeline.config import TrainConfig
from pipeline.data.parts import LabelledImages
from pipeline.defenses.common import StepMeans, no_label_smoothing, phase_callback
from pipeline.defenses.registry import DefenseConfig, DefenseData, DefenseResult, PhaseCallback, register_defense
from pipeline.models import Classifier, HeadConfig
from pipeline.models.vib_head import VIBHead, kl_to_standard_normal
from pipeline.seeding import seeded_rng
from pipeline.train import LossFn, fit, to_float


class MidConfig(DefenseConfig):
    beta: float = Field(0.003, gt=0)  # MID's CelebA setting; the paper sweeps 0.003–0.02
    bottleneck_dim: int | None = Field(None, ge=1)  # K; None → feature_dim // 2 (MID code)
    train: TrainConfig

    _plain = field_validator("train")(no_label_smoothing)


def with_vib_head(baseline: Classifier, bottleneck_dim: int, seed: int) -> Classifier:
    """The baseline's backbone (copied) under a new VIB head; the config says ``head.kind = "vib"``.

    Built directly rather than through ``create_model`` so it does not depend on ``build_head``;
    ``load_checkpoint`` needs ``build_head`` to know the "vib" kind (see ``pipeline.models.vib_head``).
    """
    head_config = HeadConfig(kind="vib", rank=bottleneck_dim, activation="none")
    config = dataclasses.replace(baseline.config, head=head_config)
    with seeded_rng(seed):
        head = VIBHead(baseline.feature_dim, baseline.num_classes, bottleneck_dim)
    return Classifier(copy.deepcopy(baseline.features), head, baseline.feature_dim, config)


class PosteriorProbe:
    """Reads (μ, σ) of the latest training forward through a hook on the head's encoder."""

    def __init__(self, head: VIBHead) -> None:
        self.head = head
        self.posterior: tuple[torch.Tensor, torch.Tensor] | None = None
        self._handle = head.encoder.register_forward_hook(self._record)

    def _record(self, module: torch.nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        if self.head.training:
            self.posterior = VIBHead.posterior(output)

    def kl(self) -> torch.Tensor:
        if self.posterior is None:
            raise RuntimeError("MID: no training forward pass reached the VIB head before the loss")
        return kl_to_standard_normal(*self.posterior)

    def close(self) -> None:
        self._handle.remove()


def mid_loss_fn(probe: PosteriorProbe, beta: float, meter: StepMeans) -> LossFn:
    def loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        ce, kl = F.cross_entropy(logits, y), probe.kl()
        meter.add(train_ce=ce.item(), train_kl=kl.item())
        return ce + beta * kl

    return loss


@torch.no_grad()
def mean_kl(model: Classifier, data: LabelledImages, batch_size: int = 1024) -> float:
    """KL(q(z|x) ‖ N(0, I)) averaged over ``data`` (closed form from μ, σ: no sampling)."""
    was_training = model.training
    model.eval()
    total = 0.0
    for start in range(0, len(data), batch_size):
        x = to_float(data.images[start : start + batch_size])
        mu, std = VIBHead.posterior(model.head.encoder(model.features(x)))
        total += kl_to_standard_normal(mu, std).item() * x.shape[0]
    model.train(was_training)
    return total / len(data)


@register_defense("mid", MidConfig)
def mid(
    baseline: Classifier, config: MidConfig, data: DefenseData, on_epoch: PhaseCallback | None = None
) -> DefenseResult:
    """Swap in a VIB head and fine-tune end-to-end with CE + β·KL; report the final KL term."""
    k = config.bottleneck_dim or max(1, baseline.feature_dim // 2)
    model = with_vib_head(baseline, k, config.train.seed)
    probe, meter = PosteriorProbe(model.head), StepMeans()
    try:
        history = fit(
            model, data.train, config.train, loss_fn=mid_loss_fn(probe, config.beta, meter), eval_data=data.test,
            on_epoch=phase_callback(on_epoch, "mid", lambda _: meter.pop()), desc="mid: VIB fine-tune",
        )  # fmt: skip
    finally:
        probe.close()
    kl = mean_kl(model, data.train)
    report = {"beta": config.beta, "bottleneck_dim": k, "train_kl": kl, "train_kl_term": config.beta * kl}
    return DefenseResult(model=model, history={"mid": history}, report=report)
