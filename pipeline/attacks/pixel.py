"""Pixel-space inversion (MI-Face) and DeepInversion (adds a BatchNorm-statistics prior).

No generator: the image itself is optimised (through a sigmoid, so it stays in [0, 1]). Cheap and
a useful lower bound; without an image prior it tends to find adversarial patterns, which is why
the judge, not the target, scores the result.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from pipeline.attacks.augment import AugmentedAttack, robust_scores
from pipeline.attacks.base import (
    Access,
    AttackBudget,
    AttackResult,
    LabelOnlyTarget,
    as_white_box,
    check_param,
    select_top,
)
from pipeline.attacks.losses import build_identity_loss, identity_loss_problems
from pipeline.attacks.registry import register_attack
from pipeline.attacks.sharding import ClassShard, RowBlock
from pipeline.distributed import sum_over_ranks
from pipeline.prior import ImagePrior


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of neighbouring pixels, per image (B,)."""
    dh = (x[:, :, 1:, :] - x[:, :, :-1, :]).pow(2).flatten(1).mean(1)
    dw = (x[:, :, :, 1:] - x[:, :, :, :-1]).pow(2).flatten(1).mean(1)
    return dh + dw


class BatchNormStatsLoss:
    """Forward hooks on every BatchNorm2d: distance of the batch's feature statistics to the
    layer's running statistics (DeepInversion's "feature distribution regularisation").

    The batch is the whole batch across ``shard``'s ranks: each contributes its rows' sums.
    """

    def __init__(self, model: nn.Module, first_multiplier: float, shard: ClassShard):
        self._terms: list[torch.Tensor] = []
        self._shard = shard
        layers = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
        self._weights = [first_multiplier] + [1.0] * (len(layers) - 1)
        self._handles = [m.register_forward_hook(self._hook) for m in layers]

    def _hook(self, module: nn.BatchNorm2d, inputs: tuple[torch.Tensor, ...], _output: torch.Tensor) -> None:
        mean, var = self._batch_statistics(inputs[0])
        self._terms.append(
            torch.linalg.vector_norm(mean - module.running_mean) + torch.linalg.vector_norm(var - module.running_var)
        )

    def _batch_statistics(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel mean and (biased) variance over the whole batch's rows and pixels."""
        if self._shard.alone:
            return x.mean(dim=(0, 2, 3)), x.var(dim=(0, 2, 3), unbiased=False)
        channels = x.shape[1]
        count = x.new_tensor([x.numel() / channels])
        sums = sum_over_ranks(torch.cat([x.sum((0, 2, 3)), (x * x).sum((0, 2, 3)), count]))
        mean = sums[:channels] / sums[-1]
        return mean, (sums[channels:-1] / sums[-1] - mean * mean).clamp_min(0)

    @property
    def num_layers(self) -> int:
        return len(self._handles)

    def pop(self) -> torch.Tensor:
        """Weighted sum over layers for the last forward pass; clears the collected terms."""
        total = sum(w * t for w, t in zip(self._weights, self._terms, strict=True))
        self._terms = []
        return total if isinstance(total, torch.Tensor) else torch.zeros(())

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


@register_attack("pixel", budget=AttackBudget(steps=100, restarts=6, samples_per_class=5))
@register_attack("deepinversion", budget=AttackBudget(steps=100, restarts=6, samples_per_class=5), bn_weight=1.0)
@dataclass(kw_only=True)
class PixelAttack(AugmentedAttack):
    """Optimise pixels: identity loss + TV + L2 (+ BatchNorm statistics when ``bn_weight`` > 0).

    Paper: Fredrikson et al., "Model Inversion Attacks that Exploit Confidence Information and
    Basic Countermeasures", CCS 2015 (``pixel``); Yin et al., "Dreaming to Distill: Data-free
    Knowledge Transfer via DeepInversion", CVPR 2020 (``deepinversion``: ``bn_weight`` > 0, first
    BatchNorm layer weighted ×``first_bn_multiplier``).
    """

    requires = Access.WHITE_BOX
    augment: bool = True  # random augmentation of every image at every optimisation step

    identity_loss: str = "logit"  # judge Acc@1 on the baseline: 0.55 (logit) vs 0.10 (ce)
    target_confidence: float | None = None
    lr: float = 0.2
    tv_weight: float = 3.0
    l2_weight: float = 0.3  # pulls the background to black, as in Fashion-MNIST
    bn_weight: float = 0.0
    first_bn_multiplier: float = 10.0

    def _check_params(self, problems: list[str]) -> None:
        super()._check_params(problems)
        check_param(problems, self.lr > 0, "lr", self.lr, "be > 0")
        for name in ("tv_weight", "l2_weight", "bn_weight", "first_bn_multiplier"):
            value = getattr(self, name)
            check_param(problems, value >= 0, name, value, "be >= 0")
        problems.extend(identity_loss_problems(self.identity_loss, self.target_confidence))

    def _run(
        self,
        target: LabelOnlyTarget,
        classes: torch.Tensor,
        budget: AttackBudget,
        prior: ImagePrior | None,
        public_images: torch.Tensor | None,
        block: RowBlock,
    ) -> AttackResult:
        target = as_white_box(target)
        identity = build_identity_loss(self.identity_loss, self.target_confidence)
        augment = self._augmentation()
        labels = block.take(classes.repeat_interleave(budget.restarts))
        latent = (0.1 * block.randn(*target.image_shape)).requires_grad_()  # x = sigmoid(latent)
        optimizer = torch.optim.Adam([latent], lr=self.lr)
        bn_loss = None
        if self.bn_weight > 0:
            bn_loss = BatchNormStatsLoss(target.model, self.first_bn_multiplier, block.shard)
        history: list[float] = []
        try:
            for _ in range(budget.steps):
                x = torch.sigmoid(latent)
                logits = target.logits(block.augment(augment, x) if self.augment else x)
                loss = block.part(identity(logits, labels).mean())
                loss = (loss + self.tv_weight * block.part(total_variation(x).mean())
                        + self.l2_weight * block.part(x.pow(2).mean()))  # fmt: skip
                if bn_loss is not None:  # a statistic of the whole batch, the same on every rank
                    loss = loss + block.coupled(self.bn_weight * bn_loss.pop())
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                history.append(block.loss_value(loss))
        finally:
            if bn_loss is not None:
                bn_loss.remove()
        images = torch.sigmoid(latent).detach()
        scores = robust_scores(target, images, labels, augment, self.score_views, use_labels=False, block=block)
        images, labels, scores = select_top(images, labels, scores, budget.restarts, budget.samples_per_class)
        info = {"bn_layers": bn_loss.num_layers if bn_loss is not None else 0}
        return AttackResult(images, labels, scores, history, info=info)
