"""The prepare stage's library side: read the configured source, carve the model-inversion split."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.data import (
    DataSection,
    MISplit,
    SplitSection,
    load_fashion_mnist,
    load_image_folder,
    make_mi_split,
    save_split,
)
from pipeline.registry import Registry


@dataclass(frozen=True)
class SourceData:
    """A labelled train pool and a disjoint labelled test pool, with their files for the manifest."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    class_names: tuple[str, ...]
    sources: dict[str, Path]


SourceLoader = Callable[[DataSection, SplitSection], SourceData]
SOURCES: Registry[SourceLoader] = Registry("data source")


@SOURCES.register("fashion_mnist")
def fashion_mnist_source(data: DataSection, split: SplitSection) -> SourceData:
    raw = load_fashion_mnist(data.root)
    return SourceData(
        raw["train_images"], raw["train_labels"], raw["test_images"], raw["test_labels"],
        tuple(raw["class_names"]), dict(raw["sources"]),
    )  # fmt: skip


def holdout(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Boolean mask choosing ``per_class`` seeded test images per class (a folder has no test set)."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(labels), dtype=bool)
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        mask[rng.permutation(members)[:per_class]] = True
    return mask


@SOURCES.register("image_folder")
def image_folder_source(data: DataSection, split: SplitSection) -> SourceData:
    cfg = data.image_folder
    folder = load_image_folder(cfg.root, cfg.image_size, cfg.channels, split_file=cfg.split_file)
    is_test = holdout(folder.labels, split.private_test_per_class, split.seed)
    sources = {str(p.relative_to(cfg.root)): p for p in folder.paths} if len(folder.paths) <= 2000 else {}
    return SourceData(
        folder.images[~is_test], folder.labels[~is_test], folder.images[is_test], folder.labels[is_test],
        folder.class_names, sources,
    )  # fmt: skip


def prepare_split(data: DataSection, split: SplitSection, out_dir: str | Path) -> MISplit:
    source = SOURCES.get(data.source)(data, split)
    mi_split = make_mi_split(
        source.train_images, source.train_labels, source.test_images, source.test_labels, split, source.class_names
    )
    save_split(mi_split, out_dir, source.sources)
    return mi_split
