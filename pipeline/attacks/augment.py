"""Random augmentations for optimisation and PPA-style robust scoring of candidates.

Optimising through random small affine transforms (and flips where the data allows) keeps an
attack from settling on adversarial pixel patterns that only fool the exact target; scoring
candidates by their mean confidence over augmented views selects the ones that stay class-y
under small changes (PPA's final selection).
"""

from __future__ import annotations

from dataclasses import dataclass

import kornia.augmentation as K
import torch
from torch import nn

from pipeline.attacks.base import Attack, LabelOnlyTarget, WhiteBoxTarget
from pipeline.attacks.sharding import RowBlock


def make_augmentation(degrees: float, translate: float, scale: float, flip: bool) -> nn.Sequential:
    """Random affine (rotation ±degrees, shift ±translate·size, zoom 1±scale), optional h-flip."""
    layers: list[nn.Module] = [
        K.RandomAffine(
            degrees=degrees, translate=(translate, translate), scale=(1 - scale, 1 + scale),
            padding_mode="zeros", p=1.0,
        )
    ]  # fmt: skip
    if flip:
        layers.append(K.RandomHorizontalFlip(p=0.5))
    return nn.Sequential(*layers)


@dataclass(kw_only=True)
class AugmentedAttack(Attack):
    """Parameters shared by every attack: the random augmentation and the robust selection.

    Selection scores each candidate on the image itself plus ``score_views - 1`` augmented views;
    gradient attacks also optimise through the augmentation (their ``augment`` parameter).
    """

    aug_degrees: float = 8.0
    aug_translate: float = 0.06
    aug_scale: float = 0.06
    aug_flip: bool = True  # Fashion-MNIST items are left-right symmetric; turn off for digits
    score_views: int = 8

    def _check_params(self, problems: list[str]) -> None:
        if not 0 <= self.aug_degrees <= 180:
            problems.append(f"aug_degrees must be in [0, 180], got {self.aug_degrees!r}")
        if not 0 <= self.aug_translate < 0.5:
            problems.append(f"aug_translate must be in [0, 0.5), got {self.aug_translate!r}")
        if not 0 <= self.aug_scale < 1:
            problems.append(f"aug_scale must be in [0, 1), got {self.aug_scale!r}")
        if not isinstance(self.score_views, int) or isinstance(self.score_views, bool) or self.score_views < 1:
            problems.append(f"score_views must be an int >= 1, got {self.score_views!r}")

    def _augmentation(self) -> nn.Sequential:
        return make_augmentation(self.aug_degrees, self.aug_translate, self.aug_scale, self.aug_flip)


@torch.no_grad()
def robust_scores(
    target: LabelOnlyTarget, images: torch.Tensor, labels: torch.Tensor, augment: nn.Sequential,
    views: int, use_labels: bool, block: RowBlock,
) -> torch.Tensor:  # fmt: skip
    """Per image: mean over ``views`` views (the image itself + augmented copies) of p_y, or,
    with ``use_labels`` (label-only attacks), the fraction of views the target labels y.

    ``images`` are ``block``'s rows, augmented as within the whole batch.
    """
    if not use_labels and not isinstance(target, WhiteBoxTarget):
        raise TypeError("probability scores need a WhiteBoxTarget; use use_labels=True for label-only access")
    total = torch.zeros(len(images))
    for view in range(views):
        x = images if view == 0 else block.augment(augment, images)
        if use_labels:
            total += (target.predict_labels(x) == labels).float()
        else:
            total += target.probabilities(x).gather(1, labels.unsqueeze(1)).squeeze(1)
    return total / views
