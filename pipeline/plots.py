"""PNG figures a person looks at first: reconstructions next to real private samples."""

from __future__ import annotations

import os
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from pipeline.io import atomic_path  # noqa: E402


def _show(ax, image: torch.Tensor) -> None:
    img = image.detach().float().clamp(0, 1)
    if img.shape[0] == 1:
        ax.imshow(img[0].numpy(), cmap="gray", vmin=0, vmax=1)
    else:
        ax.imshow(img.permute(1, 2, 0).numpy())
    ax.set_xticks([])
    ax.set_yticks([])


def reconstruction_grid(
    path: str | os.PathLike,
    reconstructions: torch.Tensor,
    labels: torch.Tensor,
    private_images: torch.Tensor,
    private_labels: torch.Tensor,
    class_names: Sequence[str],
    title: str,
    per_class: int = 4,
) -> None:
    """One row per class: ``per_class`` real private images, a gap, then ``per_class`` reconstructions."""
    classes = labels.unique().tolist()
    cols = 2 * per_class + 1
    fig, axes = plt.subplots(len(classes), cols, figsize=(cols * 0.9, len(classes) * 0.95 + 0.6), squeeze=False)
    private = private_images.float() / 255.0 if private_images.dtype == torch.uint8 else private_images
    for row, cls in enumerate(classes):
        real = private[private_labels == cls][:per_class]
        fake = reconstructions[labels == cls][:per_class]
        for col in range(cols):
            source, idx = (real, col) if col < per_class else (fake, col - per_class - 1)
            if col == per_class or idx >= len(source):
                axes[row, col].axis("off")  # the gap column, or a class with fewer images
            else:
                _show(axes[row, col], source[idx])
        axes[row, 0].set_ylabel(class_names[cls] if cls < len(class_names) else str(cls), fontsize=7, rotation=0,
                                ha="right", va="center")  # fmt: skip
    axes[0, per_class // 2].set_title("private (real)", fontsize=8)
    axes[0, per_class + 1 + per_class // 2].set_title("reconstructed", fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
