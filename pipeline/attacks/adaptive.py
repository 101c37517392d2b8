"""Parameters and set-up shared by latent-space attacks with adaptive variants (GMI, PLG-MI, KED-MI).

The identity loss (incl. LOMMA's logit loss and the confidence-aware loss against CALoR's p*),
BPDA through the head's tanh, and pre-head feature anchors from public images are parameters, so
each variant is a registry preset, not a subclass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from pipeline.attacks.anchors import estimate_class_anchors
from pipeline.attacks.augment import AugmentedAttack
from pipeline.attacks.base import WhiteBoxTarget, check_param
from pipeline.attacks.bpda import with_bpda_tanh
from pipeline.attacks.losses import IdentityLoss, build_identity_loss, identity_loss_problems
from pipeline.attacks.sharding import RowBlock


@dataclass(frozen=True)
class LossSetup:
    """What the optimisation loop needs: the target to differentiate, the loss, optional anchors."""

    grad_target: WhiteBoxTarget  # BPDA-patched copy when ``bpda``
    identity: IdentityLoss
    anchor_rows: torch.Tensor | None  # (N, d) per candidate of the block, or None without the feature term
    augment: nn.Sequential  # random views for optimisation (when ``augment``) and robust scoring
    info: dict[str, object]
    block: RowBlock  # this process's rows of the class-major batch

    def views(self, x: torch.Tensor, augment: bool) -> torch.Tensor:
        """The block's images as the target sees them in one step: augmented (as within the whole batch) or not."""
        return self.block.augment(self.augment, x) if augment else x

    def identity_term(self, feats: torch.Tensor, labels: torch.Tensor, feature_weight: float) -> torch.Tensor:
        """The block's part of the batch's mean identity loss (+ ``feature_weight`` · mean anchor distance)."""
        loss = self.block.part(self.identity(self.grad_target.head(feats), labels).mean())
        if self.anchor_rows is not None:
            loss = loss + feature_weight * self.block.part((feats - self.anchor_rows).pow(2).mean())
        return loss


@dataclass(kw_only=True)
class AdaptiveLatentAttack(AugmentedAttack):
    """Shared parameters: identity loss, BPDA, feature anchors, learning rate and latent clamp."""

    augment: bool = True  # optimise through random augmentations of every image at every step
    identity_loss: str = "max_margin"
    target_confidence: float | None = None
    lr: float = 0.1
    latent_bound: float = 3.0
    bpda: bool = False
    feature_weight: float = 0.0
    anchor_top_k: int = 32
    anchor_pool: int = 2000

    _positive_int_params: ClassVar[tuple[str, ...]] = ("anchor_top_k", "anchor_pool")

    def _check_params(self, problems: list[str]) -> None:
        super()._check_params(problems)
        check_param(problems, self.lr > 0, "lr", self.lr, "be > 0")
        check_param(problems, self.latent_bound > 0, "latent_bound", self.latent_bound, "be > 0")
        check_param(problems, self.feature_weight >= 0, "feature_weight", self.feature_weight, "be >= 0")
        for name in self._positive_int_params:
            value = getattr(self, name)
            ok = isinstance(value, int) and not isinstance(value, bool) and value > 0
            check_param(problems, ok, name, value, "be a positive int")
        problems.extend(identity_loss_problems(self.identity_loss, self.target_confidence))

    @property
    def uses_public_images(self) -> bool:
        return self.feature_weight > 0

    def _loss_setup(
        self, target: WhiteBoxTarget, classes: torch.Tensor, block: RowBlock, public_images: torch.Tensor | None
    ) -> LossSetup:
        """Anchors are estimated for every attacked class (the same on every rank), then cut to the block."""
        info: dict[str, object] = {}
        grad_target = target
        if self.bpda:
            patched, replaced = with_bpda_tanh(target.model)
            grad_target = WhiteBoxTarget(patched)
            info["bpda_replaced_tanh"] = replaced
        anchor_rows = None
        if self.feature_weight > 0:
            if public_images is None:
                raise ValueError("public_images is required when feature_weight > 0, got None")
            pool = public_images[torch.randperm(len(public_images))[: self.anchor_pool]]
            anchors, assigned = estimate_class_anchors(target, pool, classes, self.anchor_top_k)
            info["anchor_labelled_y"] = assigned.tolist()
            anchor_rows = block.take(anchors.repeat_interleave(block.per_class, dim=0))
        identity = build_identity_loss(self.identity_loss, self.target_confidence)
        return LossSetup(grad_target, identity, anchor_rows, self._augmentation(), info, block)


@dataclass(kw_only=True)
class MultiViewLatentAttack(AdaptiveLatentAttack):
    """Adds ``views``: the identity term averaged over several augmented views per step."""

    views: int = 1  # augmented views per step (PLG-MI uses two; one halves the cost on CPU)

    _positive_int_params: ClassVar[tuple[str, ...]] = ("views", "anchor_top_k", "anchor_pool")

    def _identity_term(self, setup: LossSetup, x: torch.Tensor, labels: torch.Tensor, views: int) -> torch.Tensor:
        """Mean over ``views`` augmented views of identity (+ feature_weight · anchor distance)."""
        total = x.new_zeros(())
        for _ in range(views):
            feats = setup.grad_target.features(setup.views(x, self.augment))
            total = total + setup.identity_term(feats, labels, self.feature_weight)
        return total / views
