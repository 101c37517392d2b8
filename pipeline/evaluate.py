"""Natural-utility metrics of a classifier: accuracy (overall, per class), confidence, calibration."""

from __future__ import annotations

import torch
from torch import nn

from pipeline.runtime import model_device


@torch.no_grad()
def predict_proba(model: nn.Module, images: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Softmax probabilities (on the CPU) for uint8 (or float [0,1]) images, in eval mode, on the model's device."""
    was_training = model.training
    model.eval()
    device = model_device(model)
    chunks = []
    for start in range(0, images.shape[0], batch_size):
        x = images[start : start + batch_size].to(device)
        x = x.float().div(255.0) if x.dtype == torch.uint8 else x
        chunks.append(model(x).float().softmax(1).cpu())
    model.train(was_training)
    return torch.cat(chunks)


def expected_calibration_error(probs: torch.Tensor, labels: torch.Tensor, bins: int = 15) -> float:
    """ECE with equal-width confidence bins (Guo et al., 2017)."""
    confidence, predicted = probs.max(1)
    correct = (predicted == labels).float()
    edges = torch.linspace(0, 1, bins + 1)
    ece = torch.zeros(())
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        in_bin = (confidence > lo) & (confidence <= hi)
        if in_bin.any():
            ece += in_bin.float().mean() * (confidence[in_bin].mean() - correct[in_bin].mean()).abs()
    return float(ece)


def classification_metrics(probs: torch.Tensor, labels: torch.Tensor) -> dict[str, float | list[float]]:
    """``natural_accuracy``, ``per_class_accuracy``, ``mean_true_class_prob`` and ``ece``."""
    predicted = probs.argmax(1)
    per_class = [
        float((predicted[labels == c] == c).float().mean()) if (labels == c).any() else float("nan")
        for c in range(probs.shape[1])
    ]
    return {
        "natural_accuracy": float((predicted == labels).float().mean()),
        "per_class_accuracy": per_class,
        "mean_true_class_prob": float(probs.gather(1, labels[:, None]).mean()),
        "ece": expected_calibration_error(probs, labels),
    }
