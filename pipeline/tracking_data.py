"""Dataset inputs for MLflow runs: each prepared split part as name, digest, schema and profile.

The runs table's Dataset column and the run page's "Datasets used" come from ``mlflow.log_input``.
A part is logged by what identifies it — its name, the sha256 that ``save_split`` recorded in the
manifest (so every stage that read the same bytes shows the same digest), its tensor schema and
its counts — and never by its pixels: no image array is copied into the store. The raw files the
split was cut from (the manifest's ``sources``) can be logged the same way.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

from pipeline.data.split import PART_NAMES, load_split_manifest

SOURCES = "sources"  # the key that logs the raw files the split was cut from
DIGEST_CHARS = 16  # MLflow stores at most 36; 16 hex digits of the sha256 identify a part


def _dataset_class() -> type:
    """Built on first use so that importing this module does not import mlflow."""
    from mlflow.data.dataset import Dataset

    class HashedDataset(Dataset):
        """A dataset known by its content hash, schema and profile; holds no data itself."""

        def __init__(self, source: Any, name: str, digest: str, schema: Any, profile: dict[str, Any]) -> None:
            self._schema, self._profile = schema, profile
            super().__init__(source=source, name=name, digest=digest)

        def _compute_digest(self) -> str:  # never called: the digest is always given
            raise NotImplementedError

        @property
        def schema(self) -> Any:
            return self._schema

        @property
        def profile(self) -> dict[str, Any]:
            return self._profile

        def to_dict(self) -> dict[str, str]:
            config = super().to_dict()
            if self._schema is not None:
                config["schema"] = json.dumps(self._schema.to_dict())
            config["profile"] = json.dumps(self._profile)
            return config

    return HashedDataset


def _schema(image_shape: list[int]) -> Any:
    """What ``load_split_part`` guarantees: uint8 images (N, C, H, W) and int64 labels (N,)."""
    import numpy as np
    from mlflow.data.schema import TensorDatasetSchema
    from mlflow.types import Schema, TensorSpec

    return TensorDatasetSchema(
        features=Schema([TensorSpec(np.dtype(np.uint8), (-1, *image_shape), "images")]),
        targets=Schema([TensorSpec(np.dtype(np.int64), (-1,), "labels")]),
    )


def _source(path: str | os.PathLike) -> Any:
    from mlflow.data.dataset_source_registry import resolve_dataset_source

    with warnings.catch_warnings():  # "" and "file" register the same local source twice; both resolve alike
        warnings.simplefilter("ignore", UserWarning)
        return resolve_dataset_source(os.fspath(path))


def part_datasets(split_dir: str | os.PathLike, parts: list[str]) -> list[Any]:
    """One hashed dataset per split part, from the manifest alone (no .npz is opened)."""
    manifest = load_split_manifest(split_dir)
    cls, schema = _dataset_class(), _schema(manifest["image_shape"])
    datasets = []
    for part in parts:
        entry = manifest["parts"][part]
        profile = {"num_rows": entry["count"], "source_set": entry["source"], "sha256": entry["sha256"],
                   "counts_per_class": entry["counts_per_class"]}  # fmt: skip
        datasets.append(cls(_source(Path(split_dir) / entry["file"]), part, entry["sha256"][:DIGEST_CHARS],
                            schema, profile))  # fmt: skip
    return datasets


def source_datasets(split_dir: str | os.PathLike) -> list[Any]:
    """The raw files the split was cut from, each named by its key in the manifest."""
    cls = _dataset_class()
    return [
        cls(_source(info["path"]), key, info["sha256"][:DIGEST_CHARS], None, {"sha256": info["sha256"]})
        for key, info in load_split_manifest(split_dir)["sources"].items()
    ]


def log_split_inputs(split_dir: str | os.PathLike, contexts: dict[str, str]) -> None:
    """Log the parts a stage reads as dataset inputs of the active run.

    Args:
        split_dir: the prepared split directory (holding ``manifest.json``).
        contexts: part name (or ``"sources"`` for the raw files) → the context it is used in, e.g.
            ``{"private_train": "training", "private_test": "evaluation"}``.
    """
    import mlflow

    unknown = sorted(set(contexts) - {*PART_NAMES, SOURCES})
    if unknown:
        raise ValueError(f"log_split_inputs: unknown split parts {unknown}; known: {[*PART_NAMES, SOURCES]}")
    parts = [key for key in contexts if key != SOURCES]
    datasets = part_datasets(split_dir, parts)
    used_in = [contexts[part] for part in parts]
    if SOURCES in contexts:
        raw = source_datasets(split_dir)
        datasets, used_in = datasets + raw, used_in + [contexts[SOURCES]] * len(raw)
    mlflow.log_inputs(datasets=datasets, contexts=used_in, tags_list=[None] * len(datasets))
