"""What every stage does around the library call: read reports, evaluate, write reports and plots.

The prepared split is read through ``pipeline.data`` (``load_labelled``, ``load_public``, ``load_split_manifest``).
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline.data.parts import LabelledImages
from pipeline.evaluate import classification_metrics, predict_proba
from pipeline.io import atomic_write_json
from pipeline.models import Classifier
from pipeline.runtime import start_stage


def read_report(path: str | os.PathLike) -> dict[str, Any]:
    """An upstream stage's JSON report; a missing or broken file ends the stage with its name."""
    file = Path(path)
    if not file.is_file():
        raise SystemExit(f"{file}: not found; run the stages that produce it first")
    try:
        return json.loads(file.read_text())
    except json.JSONDecodeError as err:
        raise SystemExit(f"{file}: not valid JSON ({err})") from None


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
    """A stage's command line. Parsing it starts the stage: ``pipeline.runtime.start_stage`` sets the
    process's thread count (CALOR_NUM_THREADS) and deterministic algorithms, once, for every stage."""

    def parse_args(  # type: ignore[override]  # argparse's overloads, one signature here
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        parsed = super().parse_args(args, namespace)
        start_stage()
        return parsed


def stage_parser(description: str, *paths: str) -> StageParser:
    """Stages take their paths from dvc.yaml on the command line, so they are written down once."""
    parser = StageParser(description=description)
    parser.add_argument("--params", default="params.yaml")
    for name in paths:
        parser.add_argument(f"--{name}", required=True)
    return parser
