"""What every stage does around the library call: read reports, evaluate, write reports and plots.

The prepared split is read through ``pipeline.data`` (``load_labelled``, ``load_public``, ``load_split_manifest``).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import Any

from pipeline.data.parts import LabelledImages
from pipeline.evaluate import classification_metrics, predict_proba
from pipeline.io import atomic_write_json, remove_stale_temps
from pipeline.models import Classifier
from pipeline.runtime import DeviceUnavailableError, start_stage


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
    """A stage's command line. Parsing it starts the stage, the one step every stage takes before any work:

    - ``pipeline.runtime.start_stage`` sets the process's thread count (CALOR_NUM_THREADS) and
      deterministic algorithms, once, for every stage, and resolves params.yaml's ``runtime``
      (the device; a CUDA device this machine lacks ends the stage here with the reason);
    - then the temporary files a killed run left beside or inside the stage's paths are removed: an
      atomic write killed mid-way (SIGKILL, OOM) leaves ``.<name>.<pid>.<random>.tmp`` that nothing
      else would remove (pipeline.io).
    """

    def __init__(self, description: str | None, paths: tuple[str, ...]) -> None:
        super().__init__(description=description)
        self.add_argument("--params", default="params.yaml")
        for name in paths:
            self.add_argument(f"--{name}", required=True)
        self.paths = paths

    def parse_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> argparse.Namespace:
        parsed = super().parse_args(args, namespace)
        try:
            start_stage(parsed.params)
        except DeviceUnavailableError as err:
            self.exit(2, f"{self.prog}: {err}\n")
        remove_stale_temps(getattr(parsed, name.replace("-", "_")) for name in self.paths)
        return parsed


def stage_parser(description: str | None, *paths: str) -> StageParser:
    """Stages take their paths from dvc.yaml on the command line, so they are written down once."""
    return StageParser(description, paths)
