"""Privacy metrics on hand-built cases whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from pipeline.metrics import (
    attack_accuracy,
    frechet_distance,
    judge_features,
    judge_frechet_distance,
    knn_distance,
    mean_std,
    nearest_neighbour_similarity,
    psnr,
    ssim,
    train_vs_test_closeness,
)


class FlattenJudge(nn.Module):
    """features = the flattened image; head reads the first ``classes`` pixels as logits."""

    def __init__(self, classes: int):
        super().__init__()
        self.features = nn.Flatten()
        self.head = nn.Linear(1, 1)  # replaced below; keeps the Classifier-like shape
        self.classes = classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)[:, : self.classes]


def _one_hot_images(labels: list[int], size: int = 4) -> torch.Tensor:
    images = torch.zeros(len(labels), 1, size, size)
    for i, c in enumerate(labels):
        images[i, 0, 0, c] = 1.0
    return images


def test_attack_accuracy_of_a_known_judge():
    judge = FlattenJudge(classes=4)
    images = _one_hot_images([0, 1, 2, 3])
    result = attack_accuracy(judge, images, torch.tensor([0, 1, 2, 0]))
    assert result == {"acc@1": 0.75}  # no acc@5 with 4 classes: top-5 would be trivially 1


def test_attack_accuracy_top5_with_ten_classes():
    judge = FlattenJudge(classes=10)
    images = torch.zeros(2, 1, 4, 4)
    images[0, 0].view(-1)[:10] = torch.arange(10.0) / 10  # ranking 9 > 8 > ... > 0
    images[1, 0].view(-1)[:10] = torch.arange(10.0) / 10
    result = attack_accuracy(judge, images, torch.tensor([9, 5]), k=(1, 5))
    assert result == {"acc@1": 0.5, "acc@5": 1.0}


def test_attack_accuracy_rejects_bad_labels():
    with pytest.raises(ValueError, match="labels"):
        attack_accuracy(FlattenJudge(4), _one_hot_images([0]), torch.tensor([7]))
    with pytest.raises(ValueError, match="labels"):
        attack_accuracy(FlattenJudge(4), _one_hot_images([0, 1]), torch.tensor([0]))


def _private_set(n_per_class: int = 5, classes: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(n_per_class * classes, 1, 12, 12, generator=g)
    return images, torch.arange(classes).repeat_interleave(n_per_class)


def test_knn_distance_is_zero_for_training_images_and_known_otherwise():
    judge = FlattenJudge(3)
    private, labels = _private_set()
    assert knn_distance(judge, private[::2], labels[::2], private, labels) == pytest.approx(0.0, abs=1e-9)
    shifted = (private[:1] + 0.1).clamp(max=1.0)
    expected = min(((shifted - p) ** 2).sum().item() for p in private[labels == 0])
    assert knn_distance(judge, shifted, labels[:1], private, labels) == pytest.approx(expected, rel=1e-6)


def test_knn_distance_uses_only_the_same_class():
    judge = FlattenJudge(3)
    private, labels = _private_set()
    # the image IS a class-1 training image, but is claimed as class 0: distance must not be 0
    assert knn_distance(judge, private[5:6], torch.tensor([0]), private, labels) > 0


def test_knn_accepts_uint8_private_images():
    judge = FlattenJudge(3)
    private, labels = _private_set()
    private_u8 = (private * 255).round().to(torch.uint8)
    assert knn_distance(judge, private_u8.float() / 255, labels, private_u8, labels) == pytest.approx(0.0, abs=1e-9)


def test_psnr_and_ssim_on_identical_and_known_images():
    a = torch.rand(3, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    assert torch.equal(psnr(a, a), torch.full((3,), 100.0))
    torch.testing.assert_close(ssim(a, a), torch.ones(3))
    zeros, tenth = torch.zeros(1, 1, 16, 16), torch.full((1, 1, 16, 16), 0.1)
    assert psnr(zeros, tenth).item() == pytest.approx(20.0, rel=1e-5)
    noisy = (a + 0.3 * torch.randn(a.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    assert (ssim(a, noisy) < 0.9).all()


def test_ssim_of_flat_images_and_symmetry():
    """Flat images have zero variance, so SSIM reduces to the luminance term (2ab + C1)/(a² + b² + C1)."""
    a, b = torch.full((1, 1, 16, 16), 0.2), torch.full((1, 1, 16, 16), 0.6)
    expected = (2 * 0.2 * 0.6 + 0.01**2) / (0.2**2 + 0.6**2 + 0.01**2)
    assert ssim(a, b).item() == pytest.approx(expected, rel=1e-5)
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(2, 1, 20, 20, generator=g), torch.rand(2, 1, 20, 20, generator=g)
    torch.testing.assert_close(ssim(x, y), ssim(y, x))
    with pytest.raises(ValueError, match="window_size"):
        ssim(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8))


def test_nearest_neighbour_similarity_finds_the_training_image():
    private, labels = _private_set()
    result = nearest_neighbour_similarity(private[[1, 7]], labels[[1, 7]], private, labels)
    assert result["psnr"] == 100.0 and result["ssim"] == pytest.approx(1.0, abs=1e-6)


def test_closeness_is_one_for_training_images_and_zero_for_test_images():
    judge = FlattenJudge(3)
    train, train_labels = _private_set(seed=0)
    test, test_labels = _private_set(seed=1)
    assert train_vs_test_closeness(judge, train, train_labels, train, train_labels, test, test_labels) == 1.0
    assert train_vs_test_closeness(judge, test, test_labels, train, train_labels, test, test_labels) == 0.0


def test_closeness_of_fresh_samples_is_near_one_half():
    judge = FlattenJudge(3)
    train, train_labels = _private_set(n_per_class=40, seed=0)
    test, test_labels = _private_set(n_per_class=40, seed=1)
    fresh, fresh_labels = _private_set(n_per_class=100, seed=2)
    value = train_vs_test_closeness(judge, fresh, fresh_labels, train, train_labels, test, test_labels, seed=0)
    assert 0.35 <= value <= 0.65


def test_closeness_subsamples_train_to_the_test_size():
    """10× more train than test images must not make train neighbours look closer."""
    judge = FlattenJudge(3)
    train, train_labels = _private_set(n_per_class=200, seed=0)
    test, test_labels = _private_set(n_per_class=20, seed=1)
    fresh, fresh_labels = _private_set(n_per_class=100, seed=2)
    value = train_vs_test_closeness(judge, fresh, fresh_labels, train, train_labels, test, test_labels, seed=0)
    assert 0.35 <= value <= 0.65


def test_closeness_needs_both_splits_for_every_class():
    judge = FlattenJudge(3)
    train, train_labels = _private_set()
    with pytest.raises(ValueError, match="class 2"):
        train_vs_test_closeness(judge, train, train_labels, train, train_labels, train[:10], train_labels[:10])


def test_frechet_distance_known_cases():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(2000, 3, generator=g, dtype=torch.float64)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    shift = torch.tensor([1.0, 2.0, 0.0], dtype=torch.float64)
    assert frechet_distance(a, a + shift) == pytest.approx(5.0, rel=1e-6)  # ‖Δμ‖², same covariance
    # N(0, I) vs N(0, 4I) in d dims: Tr(I + 4I − 2·2I) = d
    b = 2 * torch.randn(4000, 3, generator=g, dtype=torch.float64)
    c = torch.randn(4000, 3, generator=g, dtype=torch.float64)
    assert frechet_distance(c, b) == pytest.approx(3.0, abs=0.3)


def test_frechet_distance_matches_scipy():
    linalg = pytest.importorskip("scipy.linalg")
    g = torch.Generator().manual_seed(1)
    a = torch.randn(300, 5, generator=g, dtype=torch.float64) @ torch.randn(5, 5, generator=g, dtype=torch.float64)
    b = torch.randn(300, 5, generator=g, dtype=torch.float64) + 0.5
    ca, cb = np.cov(a.numpy().T), np.cov(b.numpy().T)
    root = linalg.sqrtm(ca @ cb).real
    expected = ((a.mean(0) - b.mean(0)) ** 2).sum().item() + np.trace(ca + cb - 2 * root)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)


def test_judge_frechet_distance_and_features():
    judge = FlattenJudge(3)
    private, _ = _private_set(n_per_class=10)
    assert judge_features(judge, private).shape == (30, 144)
    assert judge_frechet_distance(judge, private, private) == pytest.approx(0.0, abs=1e-6)


def test_mean_std():
    assert mean_std([1.0, 2.0, 3.0]) == {"mean": 2.0, "std": 1.0, "n": 3}
    assert mean_std([0.5]) == {"mean": 0.5, "std": 0.0, "n": 1}
    with pytest.raises(ValueError, match="values"):
        mean_std([])
    with pytest.raises(ValueError, match="NaN"):
        mean_std([1.0, math.nan])


def test_float_images_outside_unit_range_are_refused():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        attack_accuracy(FlattenJudge(3), torch.full((1, 1, 4, 4), 2.0), torch.tensor([0]))
