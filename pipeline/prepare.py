"""The prepare stage's library side: read the configured source, carve the model-inversion split.

A source either yields labelled train/test pools that ``make_mi_split`` samples (Fashion-MNIST, an
image folder) or, for the face protocol, split files that decide every part themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.data import (
    ConfigError,
    DataSection,
    MISplit,
    SplitSection,
    load_fashion_mnist,
    load_image_folder,
    make_mi_split,
    save_split,
)
from pipeline.data.split_files import make_files_split
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


SplitBuilder = Callable[[DataSection, SplitSection], tuple[MISplit, dict[str, Path]]]
SOURCES: Registry[SplitBuilder] = Registry("data source")


SOURCES_WITH_FILES = {"split_files"}  # the sources that decide every part themselves (split.mode files)


def check_source_fits_mode(data: DataSection, split: SplitSection) -> None:
    """Before any image is read: files mode and a split-files source go together, and only together."""
    if split.mode == "files" and data.source not in SOURCES_WITH_FILES:
        raise ConfigError(f"split.mode: 'files' needs data.source 'split_files' (not {data.source!r})")
    if split.mode != "files" and data.source in SOURCES_WITH_FILES:
        raise ConfigError(
            f"split.mode: data.source {data.source!r} decides the parts itself; set mode to files, not {split.mode}"
        )


def sampled_from(pools: SourceData, split: SplitSection) -> tuple[MISplit, dict[str, Path]]:
    """The split ``make_mi_split`` samples from a source's pools (class_disjoint / sample_disjoint)."""
    mi_split = make_mi_split(
        pools.train_images, pools.train_labels, pools.test_images, pools.test_labels, split, pools.class_names
    )
    return mi_split, pools.sources


@SOURCES.register("fashion_mnist")
def fashion_mnist_source(data: DataSection, split: SplitSection) -> tuple[MISplit, dict[str, Path]]:
    raw = load_fashion_mnist(data.root)
    pools = SourceData(
        raw["train_images"], raw["train_labels"], raw["test_images"], raw["test_labels"],
        tuple(raw["class_names"]), dict(raw["sources"]),
    )  # fmt: skip
    return sampled_from(pools, split)


def holdout(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Boolean mask choosing ``per_class`` seeded test images per class (a folder has no test set)."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(labels), dtype=bool)
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        mask[rng.permutation(members)[:per_class]] = True
    return mask


@SOURCES.register("image_folder")
def image_folder_source(data: DataSection, split: SplitSection) -> tuple[MISplit, dict[str, Path]]:
    cfg = data.image_folder
    folder = load_image_folder(cfg.root, cfg.image_size, cfg.channels, split_file=cfg.split_file)
    is_test = holdout(folder.labels, split.private_test_per_class, split.seed)
    sources = {str(p.relative_to(cfg.root)): p for p in folder.paths} if len(folder.paths) <= 2000 else {}
    pools = SourceData(
        folder.images[~is_test], folder.labels[~is_test], folder.images[is_test], folder.labels[is_test],
        folder.class_names, sources,
    )  # fmt: skip
    return sampled_from(pools, split)


@SOURCES.register("split_files")
def split_files_source(data: DataSection, split: SplitSection) -> tuple[MISplit, dict[str, Path]]:
    return make_files_split(data.split_files, split)


def prepare_split(data: DataSection, split: SplitSection, out_dir: str | Path) -> MISplit:
    check_source_fits_mode(data, split)
    mi_split, sources = SOURCES.get(data.source)(data, split)
    save_split(mi_split, out_dir, sources)
    return mi_split
