"""Where the served model comes from: an MLflow registry URI, an export directory, a ``.onnx`` or a ``.pt``.

One row per kind in ``SOURCE_KINDS`` (a predicate on the URI and a resolver). Every kind yields
the same ``ModelSource``: the tensor specs plus whichever files the backends may ask for; an ONNX
file is exported from a checkpoint only when a backend actually needs one.

A release server serves what the gate approved: the ONNX model (from the registry, an export
directory or its ``model.onnx``) must carry the export's provenance with ``gate_verdict`` approved
(the export stage writes it only after the gate binding passed). A raw ``.pt`` checkpoint, or an
ONNX file without that record, is served only with ``unsafe_ungated=True`` (``--unsafe-ungated``).

Nothing is left on disk per start: a temporary folder is made only when needed (a registry download,
an ONNX export of a checkpoint) and ``close()`` removes it (the server calls it on shutdown).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.export.onnx_export import TensorSpec
from pipeline.io import sha256_file

GATE_KEY = "calor.gate_verdict"  # pipeline.export.provenance: PREFIX + "gate_verdict"
UNGATED_HINT = (
    "serve what the gate approved (models:/<name>@champion, or the export directory models/export), "
    "or pass --unsafe-ungated to serve it anyway (for experiments, never for a release)"
)


class UngatedModel(ValueError):
    """The model does not carry an approved gate record and --unsafe-ungated was not given."""


@dataclass
class ModelSource:
    uri: str
    input: TensorSpec
    output: TensorSpec
    onnx_path: Path | None = None
    checkpoint_path: Path | None = None
    workdir: Path | None = None  # created on demand by ``scratch()``; removed by ``close()``
    gated: bool = False  # True when the served ONNX carries an approved gate record
    kind: str = "onnx"
    _tmp: Any = field(default=None, repr=False)  # a tempfile.TemporaryDirectory we own

    def scratch(self) -> Path:
        """A private temporary folder, made on first use and removed by ``close()`` (or at exit)."""
        if self.workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="calor-serve-")
            self.workdir = Path(self._tmp.name)
        return self.workdir

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def describe(self) -> dict[str, Any]:
        """For the metadata endpoint: what is served, without any local file path."""
        served = self.onnx_path or self.checkpoint_path
        digest = sha256_file(served) if served is not None and served.is_file() else None
        uri = self.uri if self.kind == "mlflow" else None  # a registry URI is not a local path
        return {"kind": self.kind, "registry_uri": uri, "sha256": digest, "gated": self.gated}

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
            path = self.scratch() / "model.onnx"
            export_onnx(model, path, max_batch=max_batch)
            self.onnx_path = path
        return self.onnx_path

    def checkpoint(self) -> Path:
        if self.checkpoint_path is None:
            raise LookupError(f"{self.uri}: no PyTorch checkpoint (an ONNX-only source)")
        return self.checkpoint_path


def _gate_verdict(path: Path) -> str | None:
    import onnx

    props = {p.key: p.value for p in onnx.load(os.fspath(path), load_external_data=False).metadata_props}
    return props.get(GATE_KEY)


def _require_gated(path: Path, what: str, unsafe_ungated: bool) -> bool:
    """True when ``path`` carries an approved gate record; else refuse, unless told to serve it anyway."""
    verdict = _gate_verdict(path)
    if verdict == "approved":
        return True
    if not unsafe_ungated:
        found = "has no gate record" if verdict is None else f"has gate verdict {verdict!r}"
        raise UngatedModel(f"{what} {found} ({GATE_KEY} in its metadata): {UNGATED_HINT}")
    return False


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


def _from_onnx(uri: str, unsafe_ungated: bool) -> ModelSource:
    path = Path(uri)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: ONNX model not found")
    gated = _require_gated(path, str(path), unsafe_ungated)
    return ModelSource(uri, *_specs_from_onnx(path), onnx_path=path, gated=gated, kind="onnx")


def _from_export_dir(uri: str, unsafe_ungated: bool) -> ModelSource:
    """The export stage's output directory: its ``model.onnx`` carries the gate record."""
    path = Path(uri) / "model.onnx"
    if not path.is_file():
        raise FileNotFoundError(f"{uri}: not an export directory (no model.onnx); run the export stage first")
    source = _from_onnx(os.fspath(path), unsafe_ungated)
    source.kind = "export_dir"
    return source


def _from_checkpoint(uri: str, unsafe_ungated: bool) -> ModelSource:
    if not unsafe_ungated:
        raise UngatedModel(f"{uri}: a raw .pt checkpoint has not passed the release gate binding; {UNGATED_HINT}")
    from pipeline.checkpoint import load_checkpoint
    from pipeline.export.onnx_export import input_spec, output_spec

    model, _ = load_checkpoint(uri)  # raises FileNotFoundError / ValueError naming the file
    return ModelSource(uri, input_spec(model), output_spec(model), checkpoint_path=Path(uri), kind="checkpoint")


def _from_mlflow(uri: str, unsafe_ungated: bool) -> ModelSource:
    """Download ``models:/<name>@<alias>`` (or ``/<version>``); the checkpoint rides in extra_files."""
    import mlflow

    from pipeline.tracking import tracking_uri

    mlflow.set_tracking_uri(tracking_uri())
    source = ModelSource(uri, TensorSpec("", (1,)), TensorSpec("", (1,)), kind="mlflow")
    try:
        try:
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=os.fspath(source.scratch())))
        except mlflow.exceptions.MlflowException as err:
            raise LookupError(
                f"{uri}: not in the model registry at {tracking_uri()} ({err.message}). A champion exists only "
                "after a `make repro` whose gate approved (reports/gate.json says why it did not)"
            ) from None
        onnx_files = sorted(local.glob("*.onnx"))
        if len(onnx_files) != 1:
            raise ValueError(f"{uri}: expected one .onnx file in the model artifacts, found {len(onnx_files)}")
        source.gated = _require_gated(onnx_files[0], uri, unsafe_ungated)
        source.input, source.output = _specs_from_onnx(onnx_files[0])
    except BaseException:
        source.close()
        raise
    checkpoints = sorted((local / "extra_files").glob("*.pt"))
    source.onnx_path, source.checkpoint_path = onnx_files[0], checkpoints[0] if checkpoints else None
    return source


SOURCE_KINDS: dict[str, tuple[Callable[[str], bool], Callable[[str, bool], ModelSource]]] = {
    "mlflow": (lambda uri: uri.startswith("models:/"), _from_mlflow),
    "export_dir": (lambda uri: Path(uri).is_dir(), _from_export_dir),
    "onnx": (lambda uri: uri.endswith(".onnx"), _from_onnx),
    "checkpoint": (lambda uri: uri.endswith(".pt"), _from_checkpoint),
}


def resolve_source(uri: str, *, unsafe_ungated: bool = False) -> ModelSource:
    """The model behind ``uri``; raises ``UngatedModel`` for a model the gate did not approve."""
    for matches, resolve in SOURCE_KINDS.values():
        if matches(uri):
            return resolve(uri, unsafe_ungated)
    raise ValueError(
        f"--model {uri!r}: expected models:/<name>@<alias>, an export directory, a .onnx file or a .pt checkpoint"
    )
