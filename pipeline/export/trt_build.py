"""TensorRT engine builds (optional extra ``.[tensorrt]``, imported lazily).

TensorRT 10 and 11 differ in the one place we care about: 10 is weakly typed and takes
``BuilderFlag.FP16``; 11 removed weak typing (no FP16/INT8 flags, networks are strongly typed),
so fp16 there needs an fp16 model (NVIDIA ModelOpt autocast) and we build fp32 and say so. The
table ``PRECISION_POLICIES`` holds one function per major version; others are refused.
Engines are tied to GPU and TensorRT version, so the file name carries both.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from pipeline.io import atomic_write_bytes, sha256_file

TENSORRT_EXTRA_HINT = "pip install .[tensorrt] (needs access to NVIDIA's package index)"


class EngineBuildError(RuntimeError):
    """The ONNX parser or the builder failed; the message carries TensorRT's own errors."""


def import_tensorrt() -> ModuleType:
    try:
        import tensorrt
    except ImportError as err:
        raise ImportError(f"tensorrt is not installed ({err}): {TENSORRT_EXTRA_HINT}") from err
    return tensorrt


def cuda_device() -> tuple[bool, str]:
    """(True, GPU name) or (False, why not)."""
    try:
        import torch
    except ImportError as err:  # pragma: no cover - torch is a core dependency
        return False, f"torch is not importable ({err})"
    if not torch.cuda.is_available():
        return False, "no CUDA GPU (torch.cuda.is_available() is False)"
    return True, torch.cuda.get_device_name(0)


def tensorrt_available() -> tuple[bool, str]:
    """(True, 'tensorrt X on GPU') or (False, the reason), never raising."""
    try:
        trt = import_tensorrt()
    except ImportError as err:
        return False, str(err)
    ok, gpu = cuda_device()
    if not ok:
        return False, gpu
    major = trt_major(trt)
    if major not in PRECISION_POLICIES:
        return False, f"TensorRT {trt.__version__} is not supported (supported majors: {sorted(PRECISION_POLICIES)})"
    return True, f"tensorrt {trt.__version__} on {gpu}"


def trt_major(trt: ModuleType) -> int:
    return int(str(trt.__version__).split(".", 1)[0])


@dataclass(frozen=True)
class PrecisionPlan:
    requested: str
    built: str
    note: str


def _precision_trt10(trt: ModuleType, config: Any, requested: str) -> PrecisionPlan:
    if requested == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
        return PrecisionPlan("fp16", "fp16", "TensorRT 10: BuilderFlag.FP16 set (weakly typed network)")
    return PrecisionPlan(requested, "fp32", "")


def _precision_trt11(trt: ModuleType, config: Any, requested: str) -> PrecisionPlan:
    del trt, config  # nothing to set: TensorRT 11 takes precision from the model's own types
    if requested == "fp16":
        return PrecisionPlan(
            "fp16", "fp32",
            "TensorRT 11 is strongly typed (BuilderFlag.FP16 was removed): fp16 requires converting the "
            "ONNX model to fp16 first (NVIDIA ModelOpt autocast); built fp32 from the fp32 model",
        )  # fmt: skip
    return PrecisionPlan(requested, "fp32", "")


PRECISION_POLICIES: dict[int, Callable[[ModuleType, Any, str], PrecisionPlan]] = {
    10: _precision_trt10,
    11: _precision_trt11,
}


def engine_stem(gpu_name: str, trt_version: str, tag: str = "model") -> str:
    """``model_nvidia-h200_trt10.13.0`` style: one engine per GPU model and TensorRT version."""
    gpu = re.sub(r"[^a-z0-9]+", "-", gpu_name.lower()).strip("-")
    return f"{tag}_{gpu}_trt{trt_version}"


@dataclass(frozen=True)
class EngineBuild:
    engine_path: str
    timing_cache_path: str
    trt_version: str
    gpu_name: str
    precision: PrecisionPlan
    build_seconds: float
    engine_sha256: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_engine(
    trt: ModuleType,
    onnx_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    gpu_name: str,
    input_name: str,
    input_dims: tuple[int, ...],
    max_batch: int,
    opt_batch: int,
    precision: str = "fp16",
    workspace_mib: int = 1024,
    tag: str = "model",
) -> EngineBuild:
    """Parse ``onnx_path`` and build a dynamic-batch engine; ``trt`` is passed in so tests can fake it."""
    major = trt_major(trt)
    if major not in PRECISION_POLICIES:
        raise EngineBuildError(f"TensorRT {trt.__version__} is not supported (majors: {sorted(PRECISION_POLICIES)})")
    out_dir = Path(out_dir)
    stem = engine_stem(gpu_name, str(trt.__version__), tag)
    engine_path, cache_path = out_dir / f"{stem}.engine", out_dir / f"{stem}.timing.cache"

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TRT 10/11
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(os.fspath(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineBuildError(f"{onnx_path}: TensorRT could not parse the ONNX model: {errors}")

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mib << 20)
    profile = builder.create_optimization_profile()
    profile.set_shape(input_name, (1, *input_dims), (opt_batch, *input_dims), (max_batch, *input_dims))
    config.add_optimization_profile(profile)
    cache = config.create_timing_cache(cache_path.read_bytes() if cache_path.is_file() else b"")
    config.set_timing_cache(cache, ignore_mismatch=False)
    plan = PRECISION_POLICIES[major](trt, config, precision)

    start = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    seconds = time.perf_counter() - start
    if serialized is None:
        raise EngineBuildError(f"{onnx_path}: build_serialized_network returned None (see TensorRT log)")
    atomic_write_bytes(engine_path, bytes(memoryview(serialized)))
    atomic_write_bytes(cache_path, bytes(memoryview(config.get_timing_cache().serialize())))
    return EngineBuild(
        str(engine_path), str(cache_path), str(trt.__version__), gpu_name, plan, seconds, sha256_file(engine_path)
    )
