"""Inference backends for the server, one row each in ``BACKENDS``; chosen once at start-up.

Preference order ``SERVE_ORDER``: TensorRT → ONNX Runtime CUDA → PyTorch CUDA → ONNX Runtime CPU.
Each row has ``available(source) -> (ok, reason)`` (never raises) and ``load(source, options)``;
a backend whose load fails is recorded with the error and the next one is tried, so the log and
the metadata endpoint always say which backend serves and why the faster ones do not.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from pipeline.export.ort_runtime import GPU_EXTRA_HINT, OrtOptions, available_providers, create_session, run_session
from pipeline.export.trt_build import cuda_device, tensorrt_available
from pipeline.registry import Registry
from pipeline.serve.source import ModelSource

log = logging.getLogger(__name__)


class Backend(Protocol):
    name: str
    platform: str  # KServe/Triton platform string for the metadata endpoint
    providers: list[str]

    def __call__(self, x: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class BackendOptions:
    max_batch: int = 32
    ort: OrtOptions = OrtOptions()
    tensorrt_precision: str = "fp16"
    engine_cache_dir: str = "models/serve/tensorrt"


@dataclass(frozen=True)
class BackendSpec:
    name: str
    device: str
    extra: str | None
    available: Callable[[ModelSource], tuple[bool, str]]
    load: Callable[[ModelSource, BackendOptions], Backend]


@dataclass
class FunctionBackend:
    """A backend is a name, what it runs on, and a numpy → numpy function."""

    name: str
    platform: str
    providers: list[str]
    fn: Callable[[np.ndarray], np.ndarray]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.fn(x)


BACKENDS: Registry[BackendSpec] = Registry("backend")
SERVE_ORDER = ("tensorrt", "onnxruntime_cuda", "torch_cuda", "onnxruntime_cpu")


def _register(spec: BackendSpec) -> None:
    BACKENDS.register(spec.name)(spec)


def _both(*checks: Callable[[], tuple[bool, str]]) -> tuple[bool, str]:
    reasons = []
    for check in checks:
        ok, reason = check()
        if not ok:
            return False, reason
        reasons.append(reason)
    return True, "; ".join(reasons)


def _needs(flag: bool, what: str) -> Callable[[], tuple[bool, str]]:
    return lambda: (flag, what if flag else f"the model source has no {what}")


# --- ONNX Runtime ---------------------------------------------------------------------------------
def _ort_cuda_provider() -> tuple[bool, str]:
    try:
        providers = available_providers()
    except ImportError as err:
        return False, str(err)
    if "CUDAExecutionProvider" not in providers:
        return False, f"onnxruntime has no CUDAExecutionProvider ({providers}); {GPU_EXTRA_HINT}"
    return True, "CUDAExecutionProvider"


def _ort_cpu_provider() -> tuple[bool, str]:
    try:
        providers = available_providers()
    except ImportError as err:
        return False, str(err)
    if "CPUExecutionProvider" not in providers:
        return False, f"onnxruntime has no CPUExecutionProvider ({providers})"
    return True, "CPUExecutionProvider"


def _load_ort(providers: list[str], name: str) -> Callable[[ModelSource, BackendOptions], Backend]:
    def load(source: ModelSource, options: BackendOptions) -> Backend:
        session = create_session(source.onnx(options.max_batch), providers, options.ort)  # raises if dropped
        return FunctionBackend(name, "onnxruntime_onnx", session.get_providers(), lambda x: run_session(session, x))

    return load


_register(BackendSpec(
    "onnxruntime_cuda", "cuda", "gpu",
    lambda s: _both(_needs(s.has_onnx, "ONNX model"), cuda_device, _ort_cuda_provider),
    _load_ort(["CUDAExecutionProvider", "CPUExecutionProvider"], "onnxruntime_cuda"),
))  # fmt: skip
_register(BackendSpec(
    "onnxruntime_cpu", "cpu", None,
    lambda s: _both(_needs(s.has_onnx, "ONNX model"), _ort_cpu_provider),
    _load_ort(["CPUExecutionProvider"], "onnxruntime_cpu"),
))  # fmt: skip


# --- PyTorch --------------------------------------------------------------------------------------
def _load_torch(device: str) -> Callable[[ModelSource, BackendOptions], Backend]:
    def load(source: ModelSource, options: BackendOptions) -> Backend:
        import torch

        from pipeline.checkpoint import load_checkpoint

        del options
        model, _ = load_checkpoint(source.checkpoint())
        model = model.to(device).eval()

        def run(x: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                return model(torch.from_numpy(x).to(device)).float().cpu().numpy()

        return FunctionBackend(f"torch_{device}", "pytorch_libtorch", [device], run)

    return load


_register(BackendSpec(
    "torch_cuda", "cuda", None,
    lambda s: _both(_needs(s.has_checkpoint, "PyTorch checkpoint"), cuda_device),
    _load_torch("cuda"),
))  # fmt: skip
# Not in SERVE_ORDER (ONNX Runtime is faster on CPU); here for --backend and the benchmark.
_register(BackendSpec(
    "torch_cpu", "cpu", None, lambda s: _both(_needs(s.has_checkpoint, "PyTorch checkpoint")), _load_torch("cpu")
))  # fmt: skip


# --- TensorRT -------------------------------------------------------------------------------------
def _load_tensorrt(source: ModelSource, options: BackendOptions) -> Backend:
    """Build (or reuse our own cached) engine for this ONNX file, GPU and TensorRT version."""
    from pipeline.export.trt_build import build_engine, engine_stem, import_tensorrt
    from pipeline.export.trt_runtime import TensorRTRunner
    from pipeline.io import sha256_file

    trt = import_tensorrt()
    onnx_path = source.onnx(options.max_batch)
    gpu = cuda_device()[1]
    tag = f"{sha256_file(onnx_path)[:16]}_b{options.max_batch}_{options.tensorrt_precision}"
    engine = Path(options.engine_cache_dir) / f"{engine_stem(gpu, str(trt.__version__), tag)}.engine"
    if not engine.is_file():
        build = build_engine(
            trt, onnx_path, options.engine_cache_dir, gpu_name=gpu, input_name=source.input.name,
            input_dims=source.input.dims, max_batch=options.max_batch, opt_batch=max(1, options.max_batch // 2),
            precision=options.tensorrt_precision, tag=tag,
        )  # fmt: skip
        log.info("built TensorRT engine %s in %.1fs (%s)", build.engine_path, build.build_seconds, build.precision)
        engine = Path(build.engine_path)
    runner = TensorRTRunner(engine)
    return FunctionBackend("tensorrt", "tensorrt_plan", [f"tensorrt {trt.__version__}", gpu], runner)


_register(BackendSpec(
    "tensorrt", "cuda", "tensorrt",
    lambda s: _both(_needs(s.has_onnx, "ONNX model"), tensorrt_available),
    _load_tensorrt,
))  # fmt: skip


def select_backend(
    source: ModelSource,
    options: BackendOptions,
    *,
    order: tuple[str, ...] = SERVE_ORDER,
    forced: str | None = None,
) -> tuple[Backend, list[dict[str, Any]]]:
    """First backend of ``order`` that is available and loads; ``forced`` tries that one only.

    Returns the backend and the attempts (name, used, reason) for the log and metadata.
    Raises RuntimeError listing every reason when none can serve.
    """
    attempts: list[dict[str, Any]] = []
    for name in (forced,) if forced else order:
        spec = BACKENDS.get(name)
        ok, reason = spec.available(source)
        if ok:
            try:
                backend = spec.load(source, options)
            except Exception as err:  # noqa: BLE001 - recorded, then the next backend is tried
                ok, reason = False, f"load failed: {type(err).__name__}: {err}"
        attempts.append({"backend": name, "used": ok, "reason": reason})
        if ok:
            return backend, attempts
    listing = "; ".join(f"{a['backend']}: {a['reason']}" for a in attempts)
    raise RuntimeError(f"no inference backend can serve {source.uri}: {listing}")


def list_backends() -> list[str]:
    return BACKENDS.names()
