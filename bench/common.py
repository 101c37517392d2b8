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
    """FLOPs of one forward pass at batch 1 (multiply-add = 2 FLOPs), counted by torch's FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    cfg = model.config
    x = torch.zeros(1, cfg.in_channels, cfg.image_size, cfg.image_size)
    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        model(x)
    return int(counter.get_total_flops())


def flops_by_layers(model: Classifier) -> int:
    """The same count from first principles, as a cross-check of ``flops_per_image``.

    Forward hooks see each Conv2d and Linear with its real output shape: a convolution costs
    2 x output elements x (input channels / groups) x kernel area, a linear layer 2 x output elements
    x input features (multiply-add = 2 FLOPs, no bias, no elementwise ops: torch's convention).
    """
    total = 0

    def conv(module: torch.nn.Conv2d, _: Any, out: torch.Tensor) -> None:
        nonlocal total
        kh, kw = module.kernel_size
        total += 2 * out.numel() * (module.in_channels // module.groups) * kh * kw

    def linear(module: torch.nn.Linear, _: Any, out: torch.Tensor) -> None:
        nonlocal total
        total += 2 * out.numel() * module.in_features

    hooks = [m.register_forward_hook(conv) for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    hooks += [m.register_forward_hook(linear) for m in model.modules() if isinstance(m, torch.nn.Linear)]
    cfg = model.config
    try:
        with torch.inference_mode():
            model(torch.zeros(1, cfg.in_channels, cfg.image_size, cfg.image_size))
    finally:
        for hook in hooks:
            hook.remove()
    return total


def gemm_peak_gflops(threads: int, n: int = 2048, seconds: float = 2.0) -> dict[str, Any]:
    """Measured fp32 compute roof: the best n x n x n matmul throughput with ``threads`` torch threads.

    A large GEMM is the most FLOP-efficient thing the machine's BLAS does, so its best call is the
    practical peak that a model's effective GFLOP/s is compared with (``fraction_of_peak``).
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a, b = torch.rand(n, n), torch.rand(n, n)
        out = torch.empty(n, n)
        for _ in range(2):  # first calls: allocation, thread pool start
            torch.matmul(a, b, out=out)
        times = time_calls(lambda: torch.matmul(a, b, out=out), seconds, min_calls=3)
    finally:
        torch.set_num_threads(previous)
    flop = 2 * n**3
    return {"threads": threads, "n": n, "calls": len(times), "gflops_best": flop / min(times) / 1e9,
            "gflops_median": flop / float(np.median(times)) / 1e9}  # fmt: skip


def memory_bandwidth_gbs(mib: int = 256, seconds: float = 1.0) -> float:
    """Measured copy bandwidth (read + write bytes per second), the roofline's other roof."""
    src = torch.rand(mib * 2**20 // 4)
    dst = torch.empty_like(src)
    dst.copy_(src)
    times = time_calls(lambda: dst.copy_(src), seconds, min_calls=3)
    return 2 * src.numel() * 4 / min(times) / 1e9


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
