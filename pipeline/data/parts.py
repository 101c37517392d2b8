"""The prepared split as the stages hold it: labelled parts, and the attacker's public part as images only.

Both are read by ``load_split_part`` (checked against the manifest), the one reader of the split's
files. The public part handed to attacks is a ``PublicImages``: its labels are dropped when it is
loaded, so no attack-side code can read them (the attacker holds unlabelled images). The floor's
public-only reference, which is trained on the labelled public split, loads it with ``load_labelled``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from pipeline.data.split import load_split_part


@dataclass(frozen=True)
class LabelledImages:
    """uint8 images (N, C, H, W) and int64 labels (N,)."""

    images: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {self.images.dtype} {tuple(self.images.shape)}")
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError(f"labels shape {tuple(self.labels.shape)} does not match {self.images.shape[0]} images")

    def __len__(self) -> int:
        return self.images.shape[0]


@dataclass(frozen=True)
class PublicImages:
    """The attacker's public data: uint8 images (N, C, H, W) and nothing else."""

    images: torch.Tensor

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {self.images.dtype} {tuple(self.images.shape)}")

    def __len__(self) -> int:
        return self.images.shape[0]


def load_labelled(split_dir: str | os.PathLike, part: str) -> LabelledImages:
    """One part of the prepared split (``private_train``, ``private_test``, ``judge_*``, ``public``) as tensors."""
    images, labels = load_split_part(split_dir, part)
    return LabelledImages(torch.from_numpy(images), torch.from_numpy(labels))


def load_public(split_dir: str | os.PathLike) -> PublicImages:
    """The public part as the attacker holds it: its images; the labels are not kept."""
    images, _ = load_split_part(split_dir, "public")
    return PublicImages(torch.from_numpy(images))
