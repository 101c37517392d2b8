"""Distances in the judge's penultimate feature space: KNN distance, train-vs-test closeness, FD.

All take the judge (never the target): features of an independent model say whether a
reconstruction resembles private data, not whether it fools the attacked network.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from pipeline.metrics.common import as_labels, judge_features


def knn_distance_from_features(
    features: torch.Tensor, labels: torch.Tensor, private_features: torch.Tensor, private_labels: torch.Tensor
) -> float:
    """Mean over reconstructions of the min squared L2 distance to a same-class private feature."""
    if len(features) == 0:
        raise ValueError("features must hold at least one reconstruction, got 0")
    total = 0.0
    for c in labels.unique().tolist():
        pool = private_features[private_labels == c]
        if len(pool) == 0:
            raise ValueError(f"no private training image of class {c} for the KNN distance")
        total += torch.cdist(features[labels == c].double(), pool.double()).pow(2).min(1).values.sum().item()
    return total / len(features)


def knn_distance(
    judge: nn.Module, images: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray,
    private_images: torch.Tensor | np.ndarray, private_labels: torch.Tensor | np.ndarray,
) -> float:  # fmt: skip
    """KNN distance (lower = better attack), GMI protocol: judge features, private TRAINING set."""
    feats = judge_features(judge, images)
    private_feats = judge_features(judge, private_images)
    return knn_distance_from_features(
        feats, as_labels(labels, len(feats), "labels"),
        private_feats, as_labels(private_labels, len(private_feats), "private_labels"),
    )  # fmt: skip


def train_vs_test_closeness(
    judge: nn.Module, images: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray,
    train_images: torch.Tensor | np.ndarray, train_labels: torch.Tensor | np.ndarray,
    test_images: torch.Tensor | np.ndarray, test_labels: torch.Tensor | np.ndarray,
    seed: int = 0, per_class: int | None = None,
) -> float:  # fmt: skip
    """Fraction of reconstructions whose nearest same-class neighbour (judge features) is a private
    TRAINING rather than a held-out private TEST image.

    Per class, equally many train and test images are drawn at random (min of both counts, capped
    by ``per_class``), so 0.5 means the attack recovers the class but nothing specific to the
    training members; above 0.5 is membership leakage. Ties count one half.
    """
    feats = judge_features(judge, images)
    y = as_labels(labels, len(feats), "labels")
    train_y = as_labels(train_labels, len(train_images), "train_labels")
    test_y = as_labels(test_labels, len(test_images), "test_labels")
    return closeness_from_features(
        feats, y, judge_features(judge, train_images), train_y, judge_features(judge, test_images), test_y,
        seed=seed, per_class=per_class,
    )  # fmt: skip


def frechet_distance(features_a: torch.Tensor, features_b: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (N, d), in float64.

    ‖μa − μb‖² + Tr(Σa + Σb − 2 (Σa Σb)^½); the trace of the root is the sum of square roots of
    the eigenvalues of Σa Σb (real and non-negative: it is similar to a PSD matrix).
    """
    if features_a.ndim != 2 or features_b.ndim != 2 or features_a.shape[1] != features_b.shape[1]:
        raise ValueError(f"need two (N, d) feature sets, got {tuple(features_a.shape)} and {tuple(features_b.shape)}")
    if len(features_a) < 2 or len(features_b) < 2:
        raise ValueError("each feature set needs at least 2 rows to estimate a covariance")
    a, b = features_a.double(), features_b.double()
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.cov(a.T).reshape(a.shape[1], -1), torch.cov(b.T).reshape(b.shape[1], -1)
    eigenvalues = torch.linalg.eigvals(cov_a @ cov_b).real.clamp_min(0)
    trace_sqrt = eigenvalues.sqrt().sum()
    value = (mu_a - mu_b).pow(2).sum() + torch.trace(cov_a) + torch.trace(cov_b) - 2 * trace_sqrt
    return max(value.item(), 0.0)


def judge_frechet_distance(
    judge: nn.Module, images: torch.Tensor | np.ndarray, reference_images: torch.Tensor | np.ndarray
) -> float:
    """Fréchet distance of reconstructions to private images in the judge's feature space.

    Stands in for FID: Inception-v3 FID needs pretrained weights downloaded from the internet,
    which this offline pipeline cannot do; judge features are domain-specific instead. Only
    comparable between runs that use the same judge and similar sample counts.
    """
    return frechet_distance(judge_features(judge, images), judge_features(judge, reference_images))


def closeness_from_features(
    features: torch.Tensor, labels: torch.Tensor,
    train_features: torch.Tensor, train_labels: torch.Tensor,
    test_features: torch.Tensor, test_labels: torch.Tensor,
    seed: int = 0, per_class: int | None = None,
) -> float:  # fmt: skip
    """``train_vs_test_closeness`` on precomputed judge features (the attack stage computes the
    private sets' features once and scores many runs against them)."""
    if len(features) == 0:
        raise ValueError("images must hold at least one reconstruction, got 0")
    if per_class is not None and per_class < 1:
        raise ValueError(f"per_class must be >= 1 or None, got {per_class}")
    generator = torch.Generator().manual_seed(seed)
    closer = 0.0
    for c in labels.unique().tolist():
        train_pool = (train_labels == c).nonzero().squeeze(1)
        test_pool = (test_labels == c).nonzero().squeeze(1)
        n = min(len(train_pool), len(test_pool), per_class or len(train_pool))
        if n == 0:
            raise ValueError(
                f"class {c} needs private train and test images, got {len(train_pool)} and {len(test_pool)}"
            )
        train_pick = train_pool[torch.randperm(len(train_pool), generator=generator)[:n]]
        test_pick = test_pool[torch.randperm(len(test_pool), generator=generator)[:n]]
        rec = features[labels == c].double()
        d_train = torch.cdist(rec, train_features[train_pick].double()).min(1).values
        d_test = torch.cdist(rec, test_features[test_pick].double()).min(1).values
        closer += (d_train < d_test).sum().item() + 0.5 * (d_train == d_test).sum().item()
    return closer / len(features)
