"""Every GPU check in one script (≤ 5 min): run it on a CUDA machine, it skips cleanly elsewhere.

    python bench/gpu_checks.py [--checkpoint models/harden/model.pt] [--budget-s 270]

Checks, each against the CPU fp32 PyTorch reference (max |diff| and top-1 agreement) and timed
with CUDA events after warm-up: PyTorch CUDA eager, PyTorch CUDA graphs, ONNX Runtime CUDA EP and
TensorRT EP (when onnxruntime-gpu is installed), a TensorRT engine built by the export code (when
tensorrt is installed). A missing piece is ``skipped: <reason>``; a parity failure makes the exit
code 1. Writes reports/bench/gpu_checks.json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from the repo root

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.common import DEFAULT_CHECKPOINT, load_model, machine_info  # noqa: E402
from pipeline.io import atomic_write_json  # noqa: E402
from pipeline.models import Classifier  # noqa: E402

BATCHES = (1, 8, 64)
FP32_ATOL, FP16_ATOL, MIN_TOP1 = 1e-3, 5e-2, 0.99


class Skip(Exception):
    """A check whose dependency or hardware is missing: reported, not a failure."""


class Checks:
    """Shared state (model, inputs, reference, ONNX file) for the check functions below."""

    def __init__(self, model: Classifier, onnx_path: Path, iters: int):
        cfg = model.config
        self.model, self.onnx_path, self.iters = model, onnx_path, iters
        self.dims = (cfg.in_channels, cfg.image_size, cfg.image_size)
        rng = np.random.default_rng(0)
        self.inputs = {b: rng.random((b, *self.dims), dtype=np.float32) for b in BATCHES}
        self.parity_x = rng.random((256, *self.dims), dtype=np.float32)
        with torch.inference_mode():
            self.reference = model(torch.from_numpy(self.parity_x)).numpy()

    def parity(self, run: Callable[[np.ndarray], np.ndarray], atol: float) -> dict[str, Any]:
        got = np.concatenate([run(self.parity_x[i : i + 64]) for i in range(0, len(self.parity_x), 64)])
        diff = float(np.max(np.abs(got - self.reference)))
        top1 = float(np.mean(got.argmax(1) == self.reference.argmax(1)))
        return {"max_abs_diff": diff, "atol": atol, "top1_agreement": top1,
                "passed": diff <= atol and top1 >= MIN_TOP1}  # fmt: skip

    def latency(self, make: Callable[[int], Callable[[], Any]]) -> list[dict[str, Any]]:
        """p50/p99 per batch size from CUDA events around each call, after warm-up."""
        rows = []
        for batch in BATCHES:
            call = make(batch)
            for _ in range(10):
                call()
            torch.cuda.synchronize()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            times = []
            for _ in range(self.iters):
                start.record()
                call()
                end.record()
                end.synchronize()
                times.append(start.elapsed_time(end))
            p50 = float(np.percentile(times, 50))
            rows.append({"batch_size": batch, "p50_ms": p50, "p99_ms": float(np.percentile(times, 99)),
                         "throughput_per_s": batch / (p50 / 1e3)})  # fmt: skip
        return rows


def torch_eager(c: Checks) -> dict[str, Any]:
    model = c.model.to("cuda")

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(x).cuda()).cpu().numpy()

    def make(batch: int) -> Callable[[], Any]:
        x = torch.from_numpy(c.inputs[batch]).cuda()
        return lambda: model(x)

    with torch.inference_mode():
        return {"parity": c.parity(run, FP32_ATOL), "latency": c.latency(make)}


def torch_cuda_graphs(c: Checks) -> dict[str, Any]:
    """One captured graph per static batch size; replay is one launch instead of one per kernel."""
    model = c.model.to("cuda")
    graphs: dict[int, tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor]] = {}

    def graph_for(batch: int) -> tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor]:
        if batch not in graphs:
            static_in = torch.zeros((batch, *c.dims), device="cuda")
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream), torch.inference_mode():
                for _ in range(3):  # warm-up on a side stream before capture, as the docs require
                    model(static_in)
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph), torch.inference_mode():
                static_out = model(static_in)
            graphs[batch] = (graph, static_in, static_out)
        return graphs[batch]

    def run(x: np.ndarray) -> np.ndarray:
        graph, static_in, static_out = graph_for(len(x))
        static_in.copy_(torch.from_numpy(x))
        graph.replay()
        return static_out.cpu().numpy()

    def make(batch: int) -> Callable[[], Any]:
        graph, static_in, _ = graph_for(batch)
        static_in.copy_(torch.from_numpy(c.inputs[batch]))
        return graph.replay

    return {"parity": c.parity(run, FP32_ATOL), "latency": c.latency(make)}


def _ort(c: Checks, providers: list[Any], atol: float) -> dict[str, Any]:
    from pipeline.export.ort_runtime import available_providers, create_session, run_session

    wanted = providers[0] if isinstance(providers[0], str) else providers[0][0]
    if wanted not in available_providers():
        raise Skip(f"onnxruntime has no {wanted} (install onnxruntime-gpu: pip install .[gpu])")
    session = create_session(c.onnx_path, providers)  # raises if ORT silently fell back to CPU
    return {"providers": session.get_providers(), "parity": c.parity(lambda x: run_session(session, x), atol),
            "latency": c.latency(lambda b: lambda: run_session(session, c.inputs[b]))}  # fmt: skip


def ort_cuda(c: Checks) -> dict[str, Any]:
    return _ort(c, ["CUDAExecutionProvider"], FP32_ATOL)


def ort_tensorrt_ep(c: Checks) -> dict[str, Any]:
    cache = tempfile.mkdtemp(prefix="trt-ep-")
    name, dims = "input", "x".join(map(str, c.dims))
    options = {"trt_fp16_enable": True, "trt_engine_cache_enable": True, "trt_engine_cache_path": cache,
               "trt_timing_cache_enable": True, "trt_profile_min_shapes": f"{name}:1x{dims}",
               "trt_profile_opt_shapes": f"{name}:8x{dims}", "trt_profile_max_shapes": f"{name}:64x{dims}"}  # fmt: skip
    return _ort(c, [("TensorrtExecutionProvider", options), "CUDAExecutionProvider"], FP16_ATOL)


def tensorrt_engine(c: Checks) -> dict[str, Any]:
    from pipeline.export.trt_build import build_engine, cuda_device, import_tensorrt, tensorrt_available
    from pipeline.export.trt_runtime import TensorRTRunner

    ok, reason = tensorrt_available()
    if not ok:
        raise Skip(reason)
    build = build_engine(
        import_tensorrt(), c.onnx_path, tempfile.mkdtemp(prefix="trt-"), gpu_name=cuda_device()[1],
        input_name="input", input_dims=c.dims, max_batch=64, opt_batch=8, precision="fp16",
    )  # fmt: skip
    runner = TensorRTRunner(build.engine_path)
    atol = FP16_ATOL if build.precision.built == "fp16" else FP32_ATOL

    def make(batch: int) -> Callable[[], Any]:
        x = torch.from_numpy(c.inputs[batch]).cuda()
        return lambda: runner.run_torch(x)

    return {"build": build.to_dict(), "parity": c.parity(runner, atol), "latency": c.latency(make)}


CHECKS: dict[str, Callable[[Checks], dict[str, Any]]] = {
    "torch_cuda_eager": torch_eager,
    "torch_cuda_graphs": torch_cuda_graphs,
    "onnxruntime_cuda": ort_cuda,
    "onnxruntime_tensorrt_ep": ort_tensorrt_ep,
    "tensorrt_engine": tensorrt_engine,
}


def run(args: argparse.Namespace) -> dict[str, Any]:
    if not torch.cuda.is_available():
        return {"status": "skipped: no CUDA GPU (torch.cuda.is_available() is False)", "checks": {}}
    from pipeline.export.onnx_export import export_onnx

    deadline = time.monotonic() + args.budget_s
    model, desc = load_model(args.checkpoint)
    result: dict[str, Any] = {"model": desc, "device": torch.cuda.get_device_name(0),
                              "cuda": torch.version.cuda, "machine": machine_info(), "checks": {}}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = Path(tmp) / "model.onnx"
        export_onnx(model, onnx_path, max_batch=64)
        checks = Checks(model, onnx_path, args.iters)
        for name, check in CHECKS.items():
            if time.monotonic() > deadline:
                result["checks"][name] = {"status": f"skipped: time budget of {args.budget_s}s used up"}
                continue
            start = time.monotonic()
            try:
                entry = {**check(checks), "status": "ran"}
            except Skip as why:
                entry = {"status": f"skipped: {why}"}
            except Exception as err:  # noqa: BLE001 - one broken check must not hide the others
                entry = {"status": f"failed: {type(err).__name__}: {err}"}
            entry["seconds"] = round(time.monotonic() - start, 2)
            result["checks"][name] = entry
            print(f"{name:25s} {entry['status']}  parity={entry.get('parity', {}).get('passed')}", flush=True)
    failed = [n for n, e in result["checks"].items()
              if e["status"].startswith("failed") or e.get("parity", {}).get("passed") is False]  # fmt: skip
    result["status"] = f"failed: {failed}" if failed else "passed"
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT)
    parser.add_argument("--budget-s", type=float, default=270.0, help="stop starting new checks after this")
    parser.add_argument("--iters", type=int, default=200, help="timed calls per batch size")
    parser.add_argument("--out", default="reports/bench/gpu_checks.json")
    args = parser.parse_args(argv)
    result = run(args)
    atomic_write_json(args.out, result)
    print(f"gpu checks: {result['status']} -> {args.out}")
    return 1 if result["status"].startswith("failed") else 0


if __name__ == "__main__":
    sys.exit(main())
