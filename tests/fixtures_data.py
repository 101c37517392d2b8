"""Writers for small, fake on-disk datasets so tests never need the real Fashion-MNIST.

Importable by any test: ``from tests.fixtures_data import write_fake_fashion_mnist``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from PIL import Image

from pipeline.data.fashion_mnist import FASHION_MNIST_FILES
from pipeline.data.idx import write_idx


def fake_labelled_images(
    per_class: int, num_classes: int = 10, shape: tuple[int, int, int] = (1, 28, 28), seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Random uint8 images ``(N, *shape)`` and shuffled int64 labels with ``per_class`` of each class."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.repeat(np.arange(num_classes, dtype=np.int64), per_class))
    images = rng.integers(0, 256, size=(labels.size, *shape), dtype=np.uint8)
    return images, labels


def learnable_labelled_images(
    per_class: int, num_classes: int = 10, shape: tuple[int, int, int] = (1, 28, 28), seed: int = 0,
    template_seed: int = 12345,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Like ``fake_labelled_images`` but learnable: each class is a fixed random blocky template
    (the same for train and test, hence ``template_seed``) plus per-image noise, so a classifier and a
    judge learn it in one epoch and an inversion attack has something to reconstruct."""
    blocks = np.random.default_rng(template_seed).random((num_classes, shape[0], 4, 4))
    templates = blocks.repeat(shape[1] // 4 + 1, axis=2).repeat(shape[2] // 4 + 1, axis=3)[..., : shape[1], : shape[2]]
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.repeat(np.arange(num_classes, dtype=np.int64), per_class))
    noisy = templates[labels] * 200 + rng.normal(0, 25, size=(labels.size, *shape))
    return noisy.clip(0, 255).astype(np.uint8), labels


def write_fake_fashion_mnist(
    directory: str | Path,
    train_per_class: int = 3,
    test_per_class: int = 2,
    gz: bool = True,
    seed: int = 0,
    learnable: bool = False,
) -> dict[str, Path]:
    """Write the four Fashion-MNIST IDX files into ``directory`` (random content, or class templates
    plus noise with ``learnable``); returns their paths."""
    directory = Path(directory)
    paths: dict[str, Path] = {}
    make = learnable_labelled_images if learnable else fake_labelled_images
    for part, per_class in (("train", train_per_class), ("test", test_per_class)):
        images, labels = make(per_class, seed=seed + (part == "test"))
        for kind, array in (("images", images[:, 0]), ("labels", labels.astype(np.uint8))):
            key = f"{part}_{kind}"
            path = directory / (FASHION_MNIST_FILES[key] + (".gz" if gz else ""))
            write_idx(path, array)
            paths[key] = path
    return paths


def write_image_folder(
    root: str | Path,
    class_counts: Mapping[str, int],
    size: tuple[int, int] = (8, 8),
    mode: str = "L",
    ext: str = ".png",
    seed: int = 0,
) -> dict[str, list[Path]]:
    """Write ``root/<class>/img_<i><ext>`` random images; returns the files per class."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    written: dict[str, list[Path]] = {}
    for name, count in class_counts.items():
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        written[name] = []
        for i in range(count):
            shape = (size[1], size[0]) if mode == "L" else (size[1], size[0], 3)
            array = rng.integers(0, 256, size=shape, dtype=np.uint8)
            path = folder / f"img_{i}{ext}"
            Image.fromarray(array).convert(mode).save(path)
            written[name].append(path)
    return written
