"""Shared input handling for the metrics: image scaling and batched judge features."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from pipeline.runtime import model_device


def as_float_images(images: torch.Tensor | np.ndarray, name: str) -> torch.Tensor:
    """uint8 → float in [0, 1]; float must already be in [0, 1] (nothing is rescaled twice)."""
    tensor = torch.as_tensor(images)
    if tensor.ndim != 4:
        raise ValueError(f"{name} must have shape (N, C, H, W), got {tuple(tensor.shape)}")
    if tensor.dtype == torch.uint8:
        return tensor.float() / 255.0
    if not tensor.is_floating_point():
        raise ValueError(f"{name} must be uint8 or float in [0, 1], got dtype {tensor.dtype}")
    if len(tensor) and (tensor.min() < 0 or tensor.max() > 1):
        raise ValueError(f"{name} must be in [0, 1], got range [{tensor.min():.3g}, {tensor.max():.3g}]")
    return tensor.float()


def as_labels(labels: torch.Tensor | np.ndarray, n: int, name: str) -> torch.Tensor:
    tensor = torch.as_tensor(labels).long()
    if tensor.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {tuple(tensor.shape)}")
    return tensor


@torch.no_grad()
def judge_features(judge: nn.Module, images: torch.Tensor | np.ndarray, batch_size: int = 512) -> torch.Tensor:
    """The judge's penultimate features ``judge.features(x)`` (N, d), in eval mode, batched.

    The judge's train/eval mode is restored afterwards.
    """
    x = as_float_images(images, "images")
    was_training = judge.training
    judge.eval()
    try:
        if not len(x):
            return torch.zeros(0)
        device = model_device(judge)
        return torch.cat([judge.features(chunk.to(device)).cpu() for chunk in x.split(batch_size)])
    finally:
        judge.train(was_training)


@torch.no_grad()
def judge_logits(judge: nn.Module, images: torch.Tensor | np.ndarray, batch_size: int = 512) -> torch.Tensor:
    x = as_float_images(images, "images")
    was_training = judge.training
    judge.eval()
    try:
        device = model_device(judge)
        return torch.cat([judge(chunk.to(device)).cpu() for chunk in x.split(batch_size)])
    finally:
        judge.train(was_training)
