"""Checkpoints: a state_dict plus the model config and the stage params that produced it.

Only tensors and plain Python values are stored, so loading works with
``torch.load(weights_only=True)`` — a checkpoint can never execute code on load.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import torch

from pipeline.io import atomic_write_with
from pipeline.models import Classifier, ModelConfig, create_model

FORMAT_VERSION = 1


def save_checkpoint(
    path: str | os.PathLike, model: Classifier, params: dict[str, Any], extra: dict[str, Any] | None = None
) -> None:
    """Write atomically: a crash mid-write leaves the previous file (or none), never half a file."""
    payload = {
        "format_version": FORMAT_VERSION,
        "model_config": model.config.to_dict(),
        "params": params,
        "extra": extra or {},
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    atomic_write_with(path, lambda f: torch.save(payload, f))


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    return read_checkpoint_bytes(path.read_bytes(), str(path))


def read_checkpoint_bytes(data: bytes, label: str) -> dict[str, Any]:
    """Parse checkpoint bytes already in memory (``label`` names them in errors).

    The release binding hashes exactly these bytes and loads the model from them, so the weights it
    ships are the weights the gate judged, whatever happens to the file in between.
    """
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for corrupt/unsafe files
        raise ValueError(f"{label}: not a loadable checkpoint ({type(err).__name__}: {err})") from err
    for key in ("format_version", "model_config", "state_dict"):
        if not isinstance(payload, dict) or key not in payload:
            raise ValueError(f"{label}: checkpoint is missing the key {key!r}")
    if payload["format_version"] != FORMAT_VERSION:
        raise ValueError(f"{label}: format_version {payload['format_version']} != {FORMAT_VERSION}")
    return payload


def load_checkpoint(path: str | os.PathLike) -> tuple[Classifier, dict[str, Any]]:
    """Rebuild the classifier (eval mode) and return it with the checkpoint's metadata."""
    return _build(read_checkpoint(path), str(path))


def load_checkpoint_bytes(data: bytes, label: str) -> tuple[Classifier, dict[str, Any]]:
    """``load_checkpoint`` over bytes already read (and hashed) by the caller."""
    return _build(read_checkpoint_bytes(data, label), label)


def _build(payload: dict[str, Any], label: str) -> tuple[Classifier, dict[str, Any]]:
    model = create_model(ModelConfig.from_dict(payload["model_config"]))
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as err:
        raise ValueError(f"{label}: weights do not match the stored model config ({err})") from err
    model.eval()
    meta = {k: v for k, v in payload.items() if k != "state_dict"}
    return model, meta
