"""Pixel similarity of reconstructions to their nearest same-class private image: PSNR and SSIM.

Meaningful for small aligned images (28×28 Fashion-MNIST), where a reconstruction can be compared
pixel by pixel with the private sample it resembles most.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.metrics.common import as_float_images, as_labels


def psnr(a: torch.Tensor, b: torch.Tensor, max_db: float = 100.0) -> torch.Tensor:
    """Per-pair PSNR (dB) of images in [0, 1]; identical pairs give ``max_db`` instead of inf."""
    if a.shape != b.shape:
        raise ValueError(f"psnr needs images of equal shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    mse = (a - b).pow(2).flatten(1).mean(1)
    return (10 * torch.log10(1.0 / mse.clamp_min(1e-30))).clamp(max=max_db)


def _gaussian_window(size: int, sigma: float, channels: int) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()


def ssim(a: torch.Tensor, b: torch.Tensor, window_size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Per-pair SSIM (Wang et al., 2004) of images in [0, 1] with a Gaussian window.

    Statistics over the valid region only (no padding); K1 = 0.01, K2 = 0.03, data range 1.
    """
    if a.shape != b.shape or a.ndim != 4:
        raise ValueError(f"ssim needs two (N, C, H, W) batches of equal shape, got {tuple(a.shape)}, {tuple(b.shape)}")
    if min(a.shape[-2:]) < window_size:
        raise ValueError(f"window_size {window_size} exceeds the image size {tuple(a.shape[-2:])}")
    c1, c2 = 0.01**2, 0.03**2
    a, b = a.double(), b.double()  # E[x²] − E[x]² cancels badly in float32 on flat regions
    channels = a.shape[1]
    window = _gaussian_window(window_size, sigma, channels)

    def blur(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, window, groups=channels)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return ssim_map.flatten(1).mean(1).float()


def nearest_private_images(
    images: torch.Tensor, labels: torch.Tensor, private_images: torch.Tensor, private_labels: torch.Tensor
) -> torch.Tensor:
    """For each reconstruction, the same-class private image closest in pixel L2 (N, C, H, W)."""
    nearest = torch.empty_like(images)
    flat_private = private_images.flatten(1)
    for c in labels.unique().tolist():
        rows = (labels == c).nonzero().squeeze(1)
        pool = (private_labels == c).nonzero().squeeze(1)
        if len(pool) == 0:
            raise ValueError(f"no private image of class {c} to compare reconstructions with")
        index = torch.cdist(images[rows].flatten(1), flat_private[pool]).argmin(1)
        nearest[rows] = private_images[pool[index]]
    return nearest


def nearest_neighbour_similarity(
    images: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray,
    private_images: torch.Tensor | np.ndarray, private_labels: torch.Tensor | np.ndarray,
    max_db: float = 100.0,
) -> dict[str, float]:  # fmt: skip
    """Mean PSNR and SSIM of each reconstruction to its nearest (pixel L2) same-class private image."""
    x = as_float_images(images, "images")
    y = as_labels(labels, len(x), "labels")
    private = as_float_images(private_images, "private_images")
    private_y = as_labels(private_labels, len(private), "private_labels")
    if len(x) == 0:
        raise ValueError("images must hold at least one reconstruction, got 0")
    nearest = nearest_private_images(x, y, private, private_y)
    return {"psnr": psnr(x, nearest, max_db).mean().item(), "ssim": ssim(x, nearest).mean().item()}
