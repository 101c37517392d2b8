"""The model-inversion data split: private data for the target, disjoint public data for attacks.

Model-inversion results are only meaningful if the attacker's public data never contains the
target's private training images, so disjointness is checked on source indices and violations
raise. Private labels are remapped to ``0..k-1`` (in ``private_classes`` order) so a target is
trained with ``num_classes = k``; in ``class_disjoint`` mode public labels follow as ``k..``. They are
kept for the judge and evaluation only; attacks must never read them.

The judge (the independent evaluator, never the attacker) gets its own, larger parts: ``judge_train``
(training-set images of every class the judge tells apart, private training images included, as in
the literature's evaluation models) and ``judge_test`` (test-set images of the same classes), with
the same label scheme.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.data.config import SplitSection
from pipeline.data.errors import ConfigError, DataError
from pipeline.io import atomic_save_npz, atomic_write_json, load_npz, sha256_file

PART_NAMES: tuple[str, ...] = ("private_train", "private_test", "public", "judge_train", "judge_test")
MANIFEST_NAME = "manifest.json"
FORMAT_VERSION = 1

# Sub-streams of the seed, so each (class, part) sample is independent of the others' sizes.
_STREAM_PRIVATE_TRAIN_AND_PUBLIC = 0
_STREAM_PRIVATE_TEST = 1
_STREAM_PUBLIC_CLASS = 2
_STREAM_JUDGE_TRAIN = 3
_STREAM_JUDGE_TEST = 4


@dataclass(frozen=True)
class SplitPart:
    """Images ``(N, C, H, W)`` uint8, remapped labels int64, and indices into the source set."""

    images: np.ndarray
    labels: np.ndarray
    indices: np.ndarray
    source: str  # "train" or "test": the set ``indices`` point into

    def counts_per_class(self) -> dict[int, int]:
        values, counts = np.unique(self.labels, return_counts=True)
        return {int(v): int(c) for v, c in zip(values, counts, strict=True)}


@dataclass(frozen=True)
class MISplit:
    """The three parts plus the class bookkeeping (original ids and names of remapped labels)."""

    mode: str
    seed: int
    private_train: SplitPart
    private_test: SplitPart
    public: SplitPart
    judge_train: SplitPart
    judge_test: SplitPart
    private_classes: tuple[int, ...]
    public_classes: tuple[int, ...]
    class_names: tuple[str, ...]  # index = remapped label
    config: SplitSection

    @property
    def num_private_classes(self) -> int:
        return len(self.private_classes)

    def part(self, name: str) -> SplitPart:
        if name not in PART_NAMES:
            raise DataError(f"unknown split part {name!r}; known: {list(PART_NAMES)}")
        return getattr(self, name)


def _check_set(name: str, images: np.ndarray, labels: np.ndarray) -> None:
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4:
        raise DataError(
            f"{name} images must be a uint8 array (N, C, H, W), got "
            f"{getattr(images, 'dtype', type(images))} {getattr(images, 'shape', '')}"
        )
    if not isinstance(labels, np.ndarray) or labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{name} labels must be a 1-D integer array, got {getattr(labels, 'shape', labels)}")
    if labels.shape[0] != images.shape[0]:
        raise DataError(f"{name}: {images.shape[0]} images but {labels.shape[0]} labels")


def _sample(labels: np.ndarray, cls: int, counts: Sequence[int], rng_key: list[int], where: str) -> list[np.ndarray]:
    """Draw ``sum(counts)`` distinct indices of class ``cls`` and cut them into ``counts`` pieces.

    ``where`` starts the error message, e.g. "private class 3 (Dress) ... train".
    """
    pool = np.flatnonzero(labels == cls)
    need = int(sum(counts))
    if pool.size == 0:
        raise DataError(f"{where} set has no images of it")
    if pool.size < need:
        raise DataError(f"{where} set has {pool.size} images of it, the split needs {need}")
    chosen = np.random.default_rng(rng_key).permutation(pool)[:need]
    bounds = np.cumsum([0, *counts])
    return [np.sort(chosen[a:b]) for a, b in itertools.pairwise(bounds)]


def _part(images: np.ndarray, per_class: list[np.ndarray], new_labels: list[int], source: str) -> SplitPart:
    indices = np.concatenate(per_class).astype(np.int64)
    labels = np.concatenate(
        [np.full(len(ix), lab, dtype=np.int64) for ix, lab in zip(per_class, new_labels, strict=True)]
    )
    return SplitPart(images=images[indices], labels=labels, indices=indices, source=source)


def _judge_part(
    labels: np.ndarray, images: np.ndarray, classes: list[int], per_class: int | None, key: list[int], source: str,
    name_of: Callable[[int], str],
) -> SplitPart:  # fmt: skip
    """Up to ``per_class`` images of each judge class (None = all of them), labelled like the split."""
    pieces = []
    for cls in classes:
        available = int((labels == cls).sum())
        count = available if per_class is None else per_class
        pieces.extend(_sample(labels, cls, [count], [*key, cls], f"judge class {cls} ({name_of(cls)}): the {source}"))
    return _part(images, pieces, list(range(len(classes))), source)


def _check_disjoint(a: SplitPart, a_name: str, b: SplitPart, b_name: str) -> None:
    for part, name in ((a, a_name), (b, b_name)):
        if np.unique(part.indices).size != part.indices.size:
            raise DataError(f"{name} holds the same {part.source}-set image twice")
    if a.source == b.source:
        shared = np.intersect1d(a.indices, b.indices)
        if shared.size:
            raise DataError(
                f"{a_name} and {b_name} share {shared.size} {a.source}-set images (e.g. indices "
                f"{shared[:5].tolist()}); model-inversion results would be invalid"
            )


def make_mi_split(
    train_images: np.ndarray,
    train_labels: np.ndarray,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    cfg: SplitSection,
    class_names: Sequence[str] | None = None,
) -> MISplit:
    """Seeded, per-class stratified private/public split (see module docstring for the label scheme).

    ``class_names[i]`` names original label ``i``; without it, all classes present in the train set
    are used and named ``class_<i>``.
    """
    _check_set("train", train_images, train_labels)
    _check_set("test", test_images, test_labels)
    if train_images.shape[1:] != test_images.shape[1:]:
        raise DataError(
            f"train images {train_images.shape[1:]} and test images {test_images.shape[1:]} differ in shape"
        )
    if class_names is not None:
        all_classes = list(range(len(class_names)))
    else:
        all_classes = [int(c) for c in np.unique(train_labels)]

    def name_of(cls: int) -> str:
        if class_names is None:
            return f"class_{cls}"
        if cls >= len(class_names):
            raise ConfigError(f"split: class {cls} does not exist (dataset has {len(class_names)} classes)")
        return str(class_names[cls])

    private = list(cfg.private_classes) if cfg.private_classes is not None else all_classes
    if cfg.mode == "class_disjoint":
        others = [c for c in all_classes if c not in private]
        public = list(cfg.public_classes) if cfg.public_classes is not None else others
        if not public:
            raise ConfigError("split.public_classes: no public classes left outside private_classes")
    else:
        public = private
    names = [name_of(c) for c in private] + ([name_of(c) for c in public] if cfg.mode == "class_disjoint" else [])

    k = len(private)
    seed = cfg.seed
    train_pieces, test_pieces, public_pieces = [], [], []
    for cls in private:
        who = f"private class {cls} ({name_of(cls)}): the"
        counts = [cfg.private_train_per_class]
        if cfg.mode == "sample_disjoint":
            counts.append(cfg.public_per_class)
        pieces = _sample(train_labels, cls, counts, [seed, cls, _STREAM_PRIVATE_TRAIN_AND_PUBLIC], f"{who} train")
        train_pieces.append(pieces[0])
        public_pieces.extend(pieces[1:])
        test_counts = [cfg.private_test_per_class]
        test_pieces.extend(_sample(test_labels, cls, test_counts, [seed, cls, _STREAM_PRIVATE_TEST], f"{who} test"))
    public_labels = list(range(k))
    if cfg.mode == "class_disjoint":
        for cls in public:
            who = f"public class {cls} ({name_of(cls)}): the train"
            key = [seed, cls, _STREAM_PUBLIC_CLASS]
            public_pieces.extend(_sample(train_labels, cls, [cfg.public_per_class], key, who))
        public_labels = list(range(k, k + len(public)))

    judge_classes = private + (public if cfg.mode == "class_disjoint" else [])
    judge_train = _judge_part(
        train_labels,
        train_images,
        judge_classes,
        cfg.judge_train_per_class,
        [seed, _STREAM_JUDGE_TRAIN],
        "train",
        name_of,
    )
    judge_test = _judge_part(
        test_labels, test_images, judge_classes, cfg.judge_test_per_class, [seed, _STREAM_JUDGE_TEST], "test", name_of
    )
    private_train = _part(train_images, train_pieces, list(range(k)), "train")
    private_test = _part(test_images, test_pieces, list(range(k)), "test")
    public_part = _part(train_images, public_pieces, public_labels, "train")
    _check_disjoint(private_train, "private_train", public_part, "public")
    _check_disjoint(private_test, "private_test", public_part, "public")
    return MISplit(
        mode=cfg.mode,
        seed=cfg.seed,
        private_train=private_train,
        private_test=private_test,
        public=public_part,
        judge_train=judge_train,
        judge_test=judge_test,
        private_classes=tuple(private),
        public_classes=tuple(public),
        class_names=tuple(names),
        config=cfg,
    )


def _class_table(split: MISplit) -> list[dict[str, Any]]:
    table = [
        {"label": i, "original_id": c, "name": split.class_names[i], "role": "private"}
        for i, c in enumerate(split.private_classes)
    ]
    if split.mode == "class_disjoint":
        k = split.num_private_classes
        table += [
            {"label": k + j, "original_id": c, "name": split.class_names[k + j], "role": "public"}
            for j, c in enumerate(split.public_classes)
        ]
    return table


def save_split(split: MISplit, out_dir: str | os.PathLike, sources: Mapping[str, str | os.PathLike]) -> Path:
    """Write the three parts and then ``manifest.json``; returns the manifest path.

    Any old manifest is removed first and the new one is written last, so a directory with a
    manifest always holds a complete, matching split even if writing stopped halfway.
    """
    out_dir = Path(out_dir)
    source_info: dict[str, dict[str, str]] = {}
    for key, src in sources.items():
        src = Path(src)
        if not src.is_file():
            raise DataError(f"{src}: source file {key!r} not found")
        source_info[key] = {"path": str(src), "sha256": sha256_file(src)}
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = out_dir / MANIFEST_NAME
    manifest_path.unlink(missing_ok=True)

    parts: dict[str, Any] = {}
    for name in PART_NAMES:
        part = split.part(name)
        path = out_dir / f"{name}.npz"
        atomic_save_npz(path, images=part.images, labels=part.labels, indices=part.indices)
        parts[name] = {
            "file": path.name,
            "source": part.source,
            "count": int(part.labels.shape[0]),
            "counts_per_class": {str(k): v for k, v in part.counts_per_class().items()},
            "sha256": sha256_file(path),
        }
    manifest = {
        "format_version": FORMAT_VERSION,
        "mode": split.mode,
        "seed": split.seed,
        "config": split.config.model_dump(),
        "num_private_classes": split.num_private_classes,
        "private_classes": list(split.private_classes),
        "public_classes": list(split.public_classes),
        "classes": _class_table(split),
        "image_shape": list(split.private_train.images.shape[1:]),
        "parts": parts,
        "sources": source_info,
    }
    atomic_write_json(manifest_path, manifest)
    return manifest_path


def load_split_manifest(directory: str | os.PathLike) -> dict[str, Any]:
    """Read ``manifest.json``; its absence means the split was never completed."""
    path = Path(directory) / MANIFEST_NAME
    if not path.is_file():
        raise DataError(f"{path}: split manifest not found (split missing or incomplete; rerun the split stage)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: unreadable manifest ({err})") from err
    if not isinstance(manifest, dict) or not isinstance(manifest.get("parts"), dict):
        raise DataError(f"{path}: manifest has no 'parts' table")
    return manifest


def load_split_part(directory: str | os.PathLike, part: str) -> tuple[np.ndarray, np.ndarray]:
    """Load one part as (images uint8 ``(N, C, H, W)``, labels int64), checked against the manifest."""
    if part not in PART_NAMES:
        raise DataError(f"unknown split part {part!r}; known: {list(PART_NAMES)}")
    manifest = load_split_manifest(directory)
    path = Path(directory) / f"{part}.npz"
    entry = manifest["parts"].get(part)
    if not isinstance(entry, dict):
        raise DataError(f"{Path(directory) / MANIFEST_NAME}: no entry for part {part!r}")
    if not path.is_file():
        raise DataError(f"{path}: split part file not found")
    if sha256_file(path) != entry.get("sha256"):
        raise DataError(f"{path}: sha256 differs from {MANIFEST_NAME} (file changed or partially rewritten)")
    try:
        arrays = load_npz(path, ("images", "labels"))
    except (FileNotFoundError, ValueError) as err:
        raise DataError(str(err)) from err
    images, labels = arrays["images"], arrays["labels"]
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1] not in (1, 3):
        raise DataError(f"{path}: images must be uint8 (N, 1|3, H, W), got {images.dtype} {images.shape}")
    if labels.dtype != np.int64 or labels.ndim != 1:
        raise DataError(f"{path}: labels must be 1-D int64, got {labels.dtype} {labels.shape}")
    if labels.shape[0] != images.shape[0]:
        raise DataError(f"{path}: {images.shape[0]} images but {labels.shape[0]} labels")
    if labels.shape[0] != entry.get("count"):
        raise DataError(f"{path}: {labels.shape[0]} samples but the manifest says {entry.get('count')}")
    if labels.size and labels.min() < 0:
        raise DataError(f"{path}: negative labels")
    return images, labels
