"""Start a classifier's feature extractor from a user's local weights file (never downloaded).

Face targets in the literature start from ImageNet or face-recognition weights. The file is a
state_dict in torchvision's layout (``resnet18-f37072fd.pth``), a ``{"state_dict": ...}`` wrapper,
or one of our own checkpoints (``features.*`` keys); the classification layer (``fc.*``,
``head.*``) is dropped because the private classes are new. Every other tensor must fit: a key the
features lack, a key the file lacks, or a shape that differs is an error naming the file and key.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from pipeline.io import sha256_file
from pipeline.models.base import Classifier

CLASSIFIER_PREFIXES = ("fc.", "head.", "classifier.")


def _feature_tensors(payload: Any, path: Path) -> dict[str, torch.Tensor]:
    state = payload.get("state_dict", payload) if isinstance(payload, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: not a state_dict (a mapping of parameter names to tensors)")
    if any(key.startswith("features.") for key in state):  # one of our checkpoints
        state = {key.removeprefix("features."): value for key, value in state.items() if key.startswith("features.")}
    return {key: value for key, value in state.items() if not key.startswith(CLASSIFIER_PREFIXES)}


def initialise_features(model: Classifier, path: str | os.PathLike) -> dict[str, Any]:
    """Copy the file's tensors into ``model.features``; returns what to record (path, sha256, count)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: init_checkpoint not found (weights are never downloaded; give a local file)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for corrupt or unsafe files
        raise ValueError(f"{path}: not a loadable weights file ({type(err).__name__}: {err})") from err
    tensors = _feature_tensors(payload, path)
    expected = model.features.state_dict()
    missing, unexpected = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"{path}: does not fit the {model.config.arch} features: missing {missing[:5]}"
            f"{'...' if len(missing) > 5 else ''}, unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}"
        )
    for key, value in tensors.items():
        if value.shape != expected[key].shape:
            raise ValueError(
                f"{path}: {key} has shape {tuple(value.shape)}, the model's is {tuple(expected[key].shape)}"
            )
    model.features.load_state_dict(tensors)
    return {"path": str(path), "sha256": sha256_file(path), "tensors": len(tensors)}
