"""What every stage does around the library call: load splits, evaluate, write reports and plots."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from pipeline.evaluate import classification_metrics, predict_proba
from pipeline.io import atomic_write_json, remove_stale_temps
from pipeline.models import Classifier
from pipeline.train import LabelledImages


def load_part(split_dir: str | os.PathLike, part: str) -> LabelledImages:
    """One part of the prepared split (``private_train``, ``private_test`` or ``public``) as tensors."""
    from pipeline.data import load_split_part

    images, labels = load_split_part(split_dir, part)
    return LabelledImages(torch.from_numpy(images), torch.from_numpy(labels))


def read_manifest(split_dir: str | os.PathLike) -> dict[str, Any]:
    path = Path(split_dir) / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: split manifest not found; run the prepare stage first")
    return json.loads(path.read_text())


def num_private_classes(manifest: dict[str, Any]) -> int:
    return len(manifest["private_classes"])


def utility_report(model: Classifier, train: LabelledImages, test: LabelledImages) -> dict[str, Any]:
    """Natural accuracy etc. on the private test split, plus the train-set mean true-class probability."""
    test_metrics = classification_metrics(predict_proba(model, test.images), test.labels)
    train_metrics = classification_metrics(predict_proba(model, train.images), train.labels)
    return {
        **test_metrics,
        "train_natural_accuracy": train_metrics["natural_accuracy"],
        "train_mean_true_class_prob": train_metrics["mean_true_class_prob"],
    }


def write_curve(path: str | os.PathLike, history: list[dict[str, float]], phase: str | None = None) -> None:
    """Per-epoch rows for ``dvc plots`` (x = epoch)."""
    rows = [{"epoch": i + 1, **({"phase": phase} if phase else {}), **row} for i, row in enumerate(history)]
    atomic_write_json(path, rows)


class StageParser(argparse.ArgumentParser):
    """Parses a stage's paths, then removes the temporary files a killed run left beside or inside them.

    The one step every stage takes before writing: an atomic write killed mid-way (SIGKILL, OOM)
    leaves ``.<name>.<pid>.<random>.tmp`` that nothing else would remove (pipeline.io).
    """

    def __init__(self, description: str | None, paths: tuple[str, ...]) -> None:
        super().__init__(description=description)
        self.add_argument("--params", default="params.yaml")
        for name in paths:
            self.add_argument(f"--{name}", required=True)
        self.paths = paths

    def parse_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> argparse.Namespace:
        parsed = super().parse_args(args, namespace)
        remove_stale_temps(getattr(parsed, name.replace("-", "_")) for name in self.paths)
        return parsed


def stage_parser(description: str | None, *paths: str) -> StageParser:
    """Stages take their paths from dvc.yaml on the command line, so they are written down once."""
    return StageParser(description, paths)
