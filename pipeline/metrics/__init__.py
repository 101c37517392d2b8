"""Privacy metrics of model-inversion reconstructions, all judged by an independent model."""

from pipeline.metrics.accuracy import attack_accuracy
from pipeline.metrics.aggregate import mean_std
from pipeline.metrics.common import judge_features
from pipeline.metrics.features import (
    frechet_distance,
    judge_frechet_distance,
    knn_distance,
    knn_distance_from_features,
    train_vs_test_closeness,
)
from pipeline.metrics.similarity import nearest_neighbour_similarity, psnr, ssim

__all__ = [
    "attack_accuracy", "frechet_distance", "judge_features", "judge_frechet_distance", "knn_distance",
    "knn_distance_from_features", "mean_std", "nearest_neighbour_similarity", "psnr", "ssim",
    "train_vs_test_closeness",
]  # fmt: skip
