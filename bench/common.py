"""Shared by the benchmarks: the model under test, FLOP counting, timing, machine description."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.models import Classifier, HeadConfig, ModelConfig, create_model

DEFAULT_CHECKPOINT = "models/harden/model.pt"
ISA_FLAGS = ("fma", "avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_tile")


def load_model(checkpoint: str | os.PathLike) -> tuple[Classifier, str]:
    """The hardened checkpoint, or (when it does not exist yet) an untrained model of the same shape."""
    if Path(checkpoint).is_file():
        from pipeline.checkpoint import load_checkpoint

        model, _ = load_checkpoint(checkpoint)
        return model.eval(), str(checkpoint)
    torch.manual_seed(0)
    cfg = ModelConfig(arch="convnet", num_classes=10, head=HeadConfig(kind="low_rank", rank=3))
    return create_model(cfg).eval(), f"untrained convnet + low-rank head ({checkpoint} not found)"


def flops_per_image(model: Classifier) -> int:
    """FLOPs of one forward pass at batch 1 (multiply-add = 2 FLOPs), counted by torch."""
    from torch.utils.flop_counter import FlopCounterMode

    cfg = model.config
    x = torch.zeros(1, cfg.in_channels, cfg.image_size, cfg.image_size)
    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        model(x)
    return int(counter.get_total_flops())


def time_calls(fn: Callable[[], Any], seconds: float, min_calls: int = 10) -> list[float]:
    """Per-call wall times (s) for at least ``seconds`` and ``min_calls`` calls."""
    times: list[float] = []
    stop = time.perf_counter() + seconds
    while time.perf_counter() < stop or len(times) < min_calls:
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def summarise(times: list[float], batch: int, flops: int, peak_gflops: float) -> dict[str, Any]:
    t = np.asarray(times)
    throughput = batch * len(t) / t.sum()
    gflops = flops * throughput / 1e9
    return {
        "batch_size": batch, "calls": len(t),
        "p50_ms": float(np.percentile(t, 50) * 1e3), "p99_ms": float(np.percentile(t, 99) * 1e3),
        "mean_ms": float(t.mean() * 1e3), "throughput_per_s": float(throughput),
        "gflop_per_s": float(gflops), "fraction_of_peak": float(gflops / peak_gflops),
    }  # fmt: skip


def _cpu_info() -> dict[str, Any]:
    info: dict[str, Any] = {"model": platform.processor() or "unknown", "mhz": None, "isa": []}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return info
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "model name":
            info["model"] = value
        elif key == "cpu MHz" and info["mhz"] is None:
            info["mhz"] = float(value)
        elif key == "flags" and not info["isa"]:
            flags = set(value.split())
            info["isa"] = [f for f in ISA_FLAGS if f in flags]
    return info


def machine_info() -> dict[str, Any]:
    cpu = _cpu_info()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    # fp32 FLOPs per cycle per core with two FMA units: 2 x 2 x (16 lanes AVX-512 | 8 lanes AVX2).
    per_cycle = 64 if "avx512f" in cpu["isa"] else 32 if "avx2" in cpu["isa"] else None
    estimate = cores * cpu["mhz"] / 1e3 * per_cycle if per_cycle and cpu["mhz"] else None
    versions = {}
    for name in ("torch", "onnxruntime", "onnx", "numpy"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {
        "cpu": cpu, "cores_available": cores, "torch_threads": torch.get_num_threads(),
        "isa_peak_estimate_gflops": estimate, "load_average": os.getloadavg(),
        "python": platform.python_version(), "versions": versions,
    }  # fmt: skip
