"""Writers for small on-disk datasets so tests never need the real Fashion-MNIST (they use it where installed).

Importable by any test: ``from tests.fixtures_data import write_fake_fashion_mnist``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from PIL import Image

from pipeline.data.fashion_mnist import FASHION_MNIST_FILES, debian_candidates, fashion_mnist_files
from pipeline.data.idx import read_idx, write_idx


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


def fashion_mnist_or_templates(per_class: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, str]:
    """``per_class`` images ``(N, 1, 28, 28)`` of each of the 10 classes, their labels, and what they are.

    Real Fashion-MNIST training images where the Debian package is installed (as on the project's
    machines; nothing is downloaded), else ``learnable_labelled_images``' templates.
    """
    for directory in debian_candidates():
        files = fashion_mnist_files(directory)
        if {"train_images", "train_labels"} <= set(files):
            images, labels = read_idx(files["train_images"]), read_idx(files["train_labels"]).astype(np.int64)
            rng = np.random.default_rng(seed)
            chosen = np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in range(10)])
            return images[chosen][:, None], labels[chosen], f"Fashion-MNIST ({directory})"
    images, labels = learnable_labelled_images(per_class, seed=seed)
    return images, labels, "class templates (no Fashion-MNIST on this machine)"


def write_celeba_layout(
    root: str | Path,
    images: np.ndarray,
    labels: np.ndarray,
    private_classes: list[int],
    test_per_class: int,
    size: int = 64,
    identity_of: Mapping[int, int] | None = None,
) -> dict[str, Path]:
    """GMI/KED-MI's CelebA layout: ``root/img_align_celeba/000001.png``... and the three split files.

    Images ``(N, 1|3, h, w)`` are written as ``size`` px RGB PNGs. Each private class is an identity
    (``identity_of`` maps class to id; default the class itself) with its first ``test_per_class``
    images in ``private_test.txt`` and the rest in ``private_train.txt``; the other classes' images
    go to ``public.txt`` without identities, as FFHQ would. Returns the root's paths by role.
    """
    root = Path(root)
    image_dir = root / "img_align_celeba"
    image_dir.mkdir(parents=True, exist_ok=True)
    identity_of = identity_of or {c: c for c in private_classes}
    lines: dict[str, list[str]] = {"private_train": [], "private_test": [], "public": []}
    seen: dict[int, int] = {}
    for index, (image, label) in enumerate(zip(images, labels.tolist(), strict=True), start=1):
        name = f"{index:06d}.png"
        pixels = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)
        Image.fromarray(pixels).convert("RGB").resize((size, size), Image.Resampling.BILINEAR).save(image_dir / name)
        if label in private_classes:
            part = "private_test" if seen.get(label, 0) < test_per_class else "private_train"
            seen[label] = seen.get(label, 0) + 1
            lines[part].append(f"{name} {identity_of[label]}")
        else:
            lines["public"].append(name)
    paths = {"images": image_dir}
    for part, part_lines in lines.items():
        paths[part] = root / f"{part}.txt"
        paths[part].write_text("\n".join(part_lines) + "\n", encoding="utf-8")
    return paths
