"""Attack accuracy as seen by an independent judge (never the target itself)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from pipeline.metrics.common import as_labels, judge_logits


def attack_accuracy(
    judge: nn.Module, images: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray, k: Sequence[int] = (1, 5)
) -> dict[str, float]:
    """Fraction of reconstructions whose attacked class is in the judge's top-k.

    Keys ``acc@k``; a k is left out when k >= the judge's number of classes (top-k would be
    trivially 1 — e.g. no Acc@5 with 5 classes). The target's own accuracy on its reconstructions
    is ≈100% by construction and must never stand in for this.
    """
    logits = judge_logits(judge, images)
    y = as_labels(labels, len(logits), "labels")
    if len(y) == 0:
        raise ValueError("images must hold at least one reconstruction, got 0")
    num_classes = logits.shape[1]
    bad = [int(c) for c in y.unique() if not 0 <= c < num_classes]
    if bad:
        raise ValueError(f"labels {bad} are not classes of the judge (range({num_classes}))")
    result = {}
    for top in k:
        if top < 1:
            raise ValueError(f"k must hold ints >= 1, got {top}")
        if top >= num_classes:
            continue
        hits = (logits.topk(top, dim=1).indices == y.unsqueeze(1)).any(1)
        result[f"acc@{top}"] = hits.float().mean().item()
    return result
