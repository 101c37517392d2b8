"""Provenance carried inside every shipped artifact (ONNX metadata_props, MLflow tags).

An artifact found on a server must say where it came from without the repository at hand: the
git commit, the params that trained it, the defense and its settings, the gate verdict, and the
library versions that produced it.
"""

from __future__ import annotations

import json
import os
import platform
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from pipeline.export.gate import ApprovedGate
from pipeline.io import sha256_file, sha256_json
from pipeline.tracking import git_commit

LIBRARIES = ("torch", "onnx", "onnxscript", "onnxruntime", "numpy", "mlflow", "tensorrt")
PREFIX = "calor."


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            continue
    return versions


def _find_defense(meta: dict[str, Any]) -> str:
    """The defense name wherever the harden stage put it (extra, params, or params['harden'])."""
    params = meta.get("params") or {}
    for where in (meta.get("extra") or {}, params, params.get("harden") or {}):
        if isinstance(where, dict) and isinstance(where.get("defense"), str):
            return where["defense"]
    return "unknown"


def file_sha256_or_missing(path: str | os.PathLike) -> str:
    return sha256_file(path) if Path(path).is_file() else "missing"


def build_provenance(meta: dict[str, Any], gate: ApprovedGate, export_params: dict[str, Any]) -> dict[str, str]:
    """Flat string → string map (what ONNX metadata_props and MLflow tags can hold)."""
    params = meta.get("params") or {}
    return {
        "git_commit": git_commit(),
        "checkpoint_sha256": gate.checkpoint_sha256,
        "params_sha256": sha256_json(params),
        "export_params_sha256": sha256_json(export_params),
        "defense": _find_defense(meta),
        "defense_settings": json.dumps(params, sort_keys=True, default=str),
        "model_config": json.dumps(meta.get("model_config", {}), sort_keys=True),
        "gate_verdict": gate.verdict,
        "gate_report_sha256": gate.report_sha256,
        "library_versions": json.dumps(library_versions(), sort_keys=True),
    }


def to_metadata_props(provenance: dict[str, str]) -> dict[str, str]:
    """Namespace the keys so they never collide with the exporter's own ``pkg.torch.*`` entries."""
    return {PREFIX + key: value for key, value in provenance.items()}


def from_metadata_props(props: dict[str, str]) -> dict[str, str]:
    return {key[len(PREFIX) :]: value for key, value in props.items() if key.startswith(PREFIX)}
