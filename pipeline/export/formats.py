"""The one table of export formats: a row per format, one function per backend.

``run_export`` walks ``FORMATS`` by ascending ``order``; each function gets the shared
``ExportContext``, adds its artifact to ``ctx.artifacts`` and returns its report section.
A format whose dependency or hardware is missing reports ``skipped: <reason>``; a format that
ran and failed its parity check raises ``ExportFailure`` (the stage must not ship it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.export.config import ExportSection
from pipeline.export.onnx_export import check_onnx, export_onnx, input_spec
from pipeline.export.ort_runtime import create_session, run_session
from pipeline.export.parity import compare
from pipeline.io import atomic_path, sha256_file
from pipeline.models import Classifier
from pipeline.registry import Registry


class ExportFailure(RuntimeError):
    """A format was produced but must not ship; ``section`` is its report entry."""

    def __init__(self, message: str, section: dict[str, Any]):
        super().__init__(message)
        self.section = section


@dataclass
class ExportContext:
    model: Classifier
    cfg: ExportSection
    out_dir: Path
    metadata: dict[str, str]
    images: np.ndarray | None = None  # float32 (N, C, H, W) in [0, 1], for top-1 agreement
    artifacts: dict[str, Path] = field(default_factory=dict)

    def parity_batches(self) -> list[int]:
        return sorted({*self.cfg.parity.batch_sizes, self.cfg.max_batch})


FormatFn = Callable[[ExportContext], dict[str, Any]]


@dataclass(frozen=True)
class ExportFormat:
    name: str
    suffix: str
    needs_gpu: bool
    extra: str | None  # the pip extra that provides the dependency
    order: int  # formats run by ascending order: later ones build on earlier artifacts
    run: FormatFn


FORMATS: Registry[ExportFormat] = Registry("export format")


def register_format(name: str, *, suffix: str, needs_gpu: bool, extra: str | None, order: int):
    """Decorator adding one row to ``FORMATS``; a duplicate name raises."""

    def decorator(fn: FormatFn) -> FormatFn:
        FORMATS.register(name)(ExportFormat(name, suffix, needs_gpu, extra, order, fn))
        return fn

    return decorator


def list_formats() -> list[ExportFormat]:
    return sorted((FORMATS.get(name) for name in FORMATS.names()), key=lambda f: f.order)


def torch_runner(model: Classifier) -> Callable[[np.ndarray], np.ndarray]:
    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(x)).numpy()

    return run


@register_format("onnx", suffix=".onnx", needs_gpu=False, extra=None, order=0)
def export_onnx_format(ctx: ExportContext) -> dict[str, Any]:
    """Export, check, and compare against PyTorch before the file takes its final name."""
    cfg = ctx.cfg
    path = ctx.out_dir / "model.onnx"
    with atomic_path(path) as tmp:
        seconds = export_onnx(ctx.model, tmp, max_batch=cfg.max_batch, opset=cfg.opset, metadata=ctx.metadata)
        checked = check_onnx(tmp)
        session = create_session(tmp)
        parity = compare(
            torch_runner(ctx.model), lambda x: run_session(session, x),
            input_dims=input_spec(ctx.model).dims, batch_sizes=ctx.parity_batches(),
            atol=cfg.parity.atol, rtol=cfg.parity.rtol, min_top1_agreement=cfg.parity.min_top1_agreement,
            images=ctx.images, max_batch=cfg.max_batch,
        )  # fmt: skip
        section = {"path": str(path), **checked, "export_seconds": round(seconds, 3),
                   "reference": "pytorch (cpu, fp32)", "runtime": session.get_providers(),
                   "parity": parity.to_dict()}  # fmt: skip
        if not parity.passed:
            section["status"] = "failed: parity"
            raise ExportFailure(f"ONNX parity against PyTorch failed: {parity.problems}", section)
        section["sha256"] = sha256_file(tmp)
    section["status"] = "exported"
    ctx.artifacts["onnx"] = path
    return section


@register_format("tensorrt", suffix=".engine", needs_gpu=True, extra="tensorrt", order=10)
def export_tensorrt_format(ctx: ExportContext) -> dict[str, Any]:
    """Engine from the ONNX artifact, compared against ONNX Runtime (CPU fp32) as the reference."""
    from pipeline.export.trt_build import EngineBuildError, build_engine, cuda_device, tensorrt_available

    cfg = ctx.cfg.tensorrt
    if not cfg.enabled:
        return {"status": "skipped: disabled in params (export.tensorrt.enabled: false)"}
    ok, reason = tensorrt_available()
    if not ok:
        return {"status": f"skipped: {reason}"}
    from pipeline.export.trt_build import import_tensorrt
    from pipeline.export.trt_runtime import TensorRTRunner

    spec = input_spec(ctx.model)
    try:
        build = build_engine(
            import_tensorrt(), ctx.artifacts["onnx"], ctx.out_dir / "tensorrt", gpu_name=cuda_device()[1],
            input_name=spec.name, input_dims=spec.dims, max_batch=ctx.cfg.max_batch, opt_batch=cfg.opt_batch,
            precision=cfg.precision, workspace_mib=cfg.workspace_mib,
        )  # fmt: skip
    except EngineBuildError as err:
        return {"status": f"failed: {err}"}
    session = create_session(ctx.artifacts["onnx"])
    parity = compare(
        lambda x: run_session(session, x), TensorRTRunner(build.engine_path),
        input_dims=spec.dims, batch_sizes=ctx.parity_batches(), atol=cfg.atol, rtol=0.0,
        min_top1_agreement=cfg.min_top1_agreement, images=ctx.images, max_batch=ctx.cfg.max_batch,
    )  # fmt: skip
    section = {**build.to_dict(), "reference": "onnxruntime (cpu, fp32)", "parity": parity.to_dict()}
    if not parity.passed:
        Path(build.engine_path).unlink(missing_ok=True)  # never leave an engine that failed parity
        return {**section, "status": f"failed: parity {parity.problems}"}
    ctx.artifacts["tensorrt"] = Path(build.engine_path)
    return {**section, "status": "built"}
