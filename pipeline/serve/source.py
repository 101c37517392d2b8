"""Where the served model comes from: an MLflow registry URI, a local ``.onnx`` or a ``.pt`` checkpoint.

One row per kind in ``SOURCE_KINDS`` (a predicate on the URI and a resolver). Every kind yields
the same ``ModelSource``: the tensor specs plus whichever files the backends may ask for; an ONNX
file is exported from a checkpoint only when a backend actually needs one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.export.onnx_export import TensorSpec


@dataclass
class ModelSource:
    uri: str
    input: TensorSpec
    output: TensorSpec
    onnx_path: Path | None = None
    checkpoint_path: Path | None = None
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="calor-serve-")))

    @property
    def has_onnx(self) -> bool:
        """True when an ONNX file exists or can be exported from the checkpoint."""
        return self.onnx_path is not None or self.checkpoint_path is not None

    @property
    def has_checkpoint(self) -> bool:
        return self.checkpoint_path is not None

    def onnx(self, max_batch: int = 64) -> Path:
        if self.onnx_path is None:
            if self.checkpoint_path is None:
                raise LookupError(f"{self.uri}: no ONNX model and no checkpoint to export one from")
            from pipeline.checkpoint import load_checkpoint
            from pipeline.export.onnx_export import export_onnx

            model, _ = load_checkpoint(self.checkpoint_path)
            path = self.workdir / "model.onnx"
            export_onnx(model, path, max_batch=max_batch)
            self.onnx_path = path
        return self.onnx_path

    def checkpoint(self) -> Path:
        if self.checkpoint_path is None:
            raise LookupError(f"{self.uri}: no PyTorch checkpoint (an ONNX-only source)")
        return self.checkpoint_path


def _specs_from_onnx(path: Path) -> tuple[TensorSpec, TensorSpec]:
    import onnx

    graph = onnx.load(os.fspath(path), load_external_data=False).graph
    if len(graph.input) != 1 or len(graph.output) != 1:
        raise ValueError(f"{path}: expected one input and one output, got {len(graph.input)} / {len(graph.output)}")

    def spec(value_info) -> TensorSpec:  # noqa: ANN001 - onnx.ValueInfoProto
        dims = tuple(d.dim_value for d in value_info.type.tensor_type.shape.dim[1:])  # without batch
        if not dims or any(d <= 0 for d in dims):
            raise ValueError(f"{path}: {value_info.name} needs static non-batch dims, got {dims}")
        return TensorSpec(value_info.name, dims)

    return spec(graph.input[0]), spec(graph.output[0])


def _from_onnx(uri: str) -> ModelSource:
    path = Path(uri)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: ONNX model not found")
    return ModelSource(uri, *_specs_from_onnx(path), onnx_path=path)


def _from_checkpoint(uri: str) -> ModelSource:
    from pipeline.checkpoint import load_checkpoint
    from pipeline.export.onnx_export import input_spec, output_spec

    model, _ = load_checkpoint(uri)  # raises FileNotFoundError / ValueError naming the file
    return ModelSource(uri, input_spec(model), output_spec(model), checkpoint_path=Path(uri))


def _from_mlflow(uri: str) -> ModelSource:
    """Download ``models:/<name>@<alias>`` (or ``/<version>``); the checkpoint rides in extra_files."""
    import mlflow

    from pipeline.tracking import tracking_uri

    mlflow.set_tracking_uri(tracking_uri())
    workdir = Path(tempfile.mkdtemp(prefix="calor-serve-"))
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=os.fspath(workdir)))
    onnx_files = sorted(local.glob("*.onnx"))
    if len(onnx_files) != 1:
        raise ValueError(f"{uri}: expected one .onnx file in the model artifacts, found {onnx_files}")
    checkpoints = sorted((local / "extra_files").glob("*.pt"))
    return ModelSource(
        uri, *_specs_from_onnx(onnx_files[0]), onnx_path=onnx_files[0],
        checkpoint_path=checkpoints[0] if checkpoints else None, workdir=workdir,
    )  # fmt: skip


SOURCE_KINDS: dict[str, tuple[Callable[[str], bool], Callable[[str], ModelSource]]] = {
    "mlflow": (lambda uri: uri.startswith("models:/"), _from_mlflow),
    "onnx": (lambda uri: uri.endswith(".onnx"), _from_onnx),
    "checkpoint": (lambda uri: uri.endswith(".pt"), _from_checkpoint),
}


def resolve_source(uri: str) -> ModelSource:
    for matches, resolve in SOURCE_KINDS.values():
        if matches(uri):
            return resolve(uri)
    raise ValueError(f"--model {uri!r}: expected models:/<name>@<alias>, a .onnx file or a .pt checkpoint")
