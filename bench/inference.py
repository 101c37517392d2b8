"""CPU inference benchmark: PyTorch eager vs ONNX Runtime (untuned and tuned) per batch size.

    python bench/inference.py [--checkpoint models/harden/model.pt]

Measurements are interleaved (round-robin over variants, several rounds) so that load from other
processes on a shared machine hits every variant alike; p50 is the robust number, p99 shows the
noise. Writes reports/bench/inference.json: one record per (backend, batch size) plus the
machine, the model's FLOPs per image, and whether ONNX Runtime clears the bar against eager.

``fraction_of_peak`` is measured, not assumed: in the same run, a large fp32 GEMM is timed with
each thread count the variants use (the roofline's compute roof), copy bandwidth is measured (its
memory roof), and the model's FLOP count from torch's FlopCounterMode is checked against a count
from the layer shapes. A variant's effective GFLOP/s divided by the GEMM peak at its thread count
can still exceed 1 if a kernel does fewer operations than direct convolution (e.g. Winograd).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from the repo root

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.common import (  # noqa: E402
    DEFAULT_CHECKPOINT,
    flops_by_layers,
    flops_per_image,
    gemm_peak_gflops,
    load_model,
    machine_info,
    memory_bandwidth_gbs,
    summarise,
    time_calls,
)
from pipeline.export.onnx_export import INPUT_NAME, OUTPUT_NAME, export_onnx  # noqa: E402
from pipeline.export.ort_runtime import OrtOptions, create_session  # noqa: E402
from pipeline.io import atomic_write_json  # noqa: E402
from pipeline.models import Classifier  # noqa: E402

# The bar the issue sets: ONNX Runtime (tuned) p50 speed-up over PyTorch eager, per batch size.
BAR = {1: 4.0, 64: 2.5}
TUNED = OrtOptions(graph_optimization="all", intra_op_threads=None, inter_op_threads=1,
                   execution_mode="sequential", allow_spinning=True)  # fmt: skip

Call = Callable[[], Any]


def eager(threads: int | None) -> Callable[[Classifier, Path], Callable[[np.ndarray], Call]]:
    """PyTorch eager under inference_mode; ``threads=None`` keeps torch's default (one per core)."""
    default = torch.get_num_threads()

    def factory(model: Classifier, onnx_path: Path) -> Callable[[np.ndarray], Call]:
        del onnx_path

        def make(x: np.ndarray) -> Call:
            xt = torch.from_numpy(x)

            def call() -> None:
                torch.set_num_threads(threads or default)  # variants interleave: set it every call
                with torch.inference_mode():
                    model(xt)

            return call

        return make

    return factory


def ort_untuned(model: Classifier, onnx_path: Path) -> Callable[[np.ndarray], Call]:
    """A bare ``InferenceSession(path)``: ONNX Runtime's own defaults, no IO binding."""
    import onnxruntime as ort

    del model
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    return lambda x: lambda: session.run(None, {INPUT_NAME: x})


def ort_tuned(model: Classifier, onnx_path: Path) -> Callable[[np.ndarray], Call]:
    """``TUNED`` session options plus IO binding (input bound once, output preallocated)."""
    import onnxruntime as ort

    session = create_session(onnx_path, ["CPUExecutionProvider"], TUNED)

    def make(x: np.ndarray) -> Call:
        binding = session.io_binding()
        binding.bind_cpu_input(INPUT_NAME, x)
        out = ort.OrtValue.ortvalue_from_numpy(np.empty((len(x), model.config.num_classes), np.float32))
        binding.bind_ortvalue_output(OUTPUT_NAME, out)
        return lambda: session.run_with_iobinding(binding)

    return make


def _physical_cores() -> int:
    """ONNX Runtime's default intra-op thread count (one per physical core); torch's default is the same."""
    try:
        import psutil

        return psutil.cpu_count(logical=False) or torch.get_num_threads()
    except ImportError:
        return torch.get_num_threads()


VARIANTS: dict[str, Callable[[Classifier, Path], Callable[[np.ndarray], Call]]] = {
    "pytorch_eager": eager(None),
    "pytorch_eager_1thread": eager(1),  # less exposed to OpenMP barrier stalls on a busy machine
    "onnxruntime_cpu_untuned": ort_untuned,
    "onnxruntime_cpu": ort_tuned,
}
# --sweep: which session knobs matter (measured at batch 1 and 64, interleaved like the main run).
SWEEP = {
    "graph_disable": OrtOptions(graph_optimization="disable"),
    "graph_basic": OrtOptions(graph_optimization="basic"),
    "graph_extended": OrtOptions(graph_optimization="extended"),
    "graph_all": OrtOptions(graph_optimization="all"),
    "graph_all_1_thread": OrtOptions(intra_op_threads=1),
    "graph_all_no_spinning": OrtOptions(allow_spinning=False),
    "graph_all_parallel_mode": OrtOptions(execution_mode="parallel", inter_op_threads=2),
}
TUNING_NOTES = [
    "model.eval() before export; the dynamo exporter's optimizer folds every Conv+BatchNorm into the Conv",
    "graph_optimization_level=ORT_ENABLE_ALL (Conv+ReLU fusion, NCHWc layout); 'disable'/'basic' measured ~2x slower",
    "intra_op threads = ONNX Runtime default (one per physical core), inter_op=1, sequential execution",
    "IO binding: input bound once and output preallocated (no per-call allocation)",
]


def measure(calls: dict[str, Call], args: argparse.Namespace) -> dict[str, list[float]]:
    """Warm every call up, then time them round-robin so background load hits all alike."""
    for call in calls.values():  # first-call allocations, lazy init, thread-pool spin-up
        for _ in range(args.warmup):
            call()
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(args.rounds):
        for name, call in calls.items():
            times[name] += time_calls(call, args.seconds / args.rounds, min_calls=3)
    return times


def sweep(onnx_path: Path, dims: tuple[int, ...], args: argparse.Namespace) -> list[dict[str, Any]]:
    sessions = {name: create_session(onnx_path, ["CPUExecutionProvider"], opts) for name, opts in SWEEP.items()}
    rows = []
    for batch in (1, 64):
        x = np.random.default_rng(0).random((batch, *dims), np.float32)
        calls = {name: (lambda s=s, x=x: s.run(None, {INPUT_NAME: x})) for name, s in sessions.items()}
        for name, times in measure(calls, args).items():
            t = np.asarray(times)
            rows.append({"config": name, "options": SWEEP[name].__dict__, "batch_size": batch,
                         "p50_ms": float(np.percentile(t, 50) * 1e3)})  # fmt: skip
            print(f"sweep {name:25s} batch {batch:3d}: p50 {rows[-1]['p50_ms']:8.3f} ms")
    return rows


def variant_threads() -> dict[str, int]:
    """The intra-op thread count each variant computes with (what its peak is measured with)."""
    default, cores = torch.get_num_threads(), _physical_cores()
    return {"pytorch_eager": default, "pytorch_eager_1thread": 1, "onnxruntime_cpu_untuned": cores,
            "onnxruntime_cpu": cores}  # fmt: skip


def roofline(model: Classifier, args: argparse.Namespace) -> dict[str, Any]:
    """Measured roofs (GEMM peak per thread count, copy bandwidth) and the checked FLOP count."""
    flops, by_layers = flops_per_image(model), flops_by_layers(model)
    agree = abs(flops - by_layers) <= 0.01 * max(flops, by_layers)
    if not agree:
        print(f"WARNING: FlopCounterMode counts {flops} FLOP per image, the layer shapes {by_layers}")
    peaks = {t: gemm_peak_gflops(t, args.gemm_size, args.gemm_seconds) for t in sorted(set(variant_threads().values()))}
    return {
        "flops_per_image": flops, "flops_per_image_by_layers": by_layers, "flop_counts_agree": agree,
        "gemm": {str(t): p for t, p in peaks.items()},
        "memory_bandwidth_gbs": memory_bandwidth_gbs(seconds=args.gemm_seconds / 2),
        "arithmetic_intensity_note": "peaks are the best call of a fp32 n x n GEMM (torch.matmul) per thread count",
    }  # fmt: skip


def run(args: argparse.Namespace) -> dict[str, Any]:
    model, model_desc = load_model(args.checkpoint)
    roof = roofline(model, args)
    flops = roof["flops_per_image"]
    threads = variant_threads()
    peak = {name: roof["gemm"][str(t)]["gflops_best"] for name, t in threads.items()}
    cfg = model.config
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = Path(args.onnx) if args.onnx else Path(tmp) / "model.onnx"
        if not args.onnx:
            export_onnx(model, onnx_path, max_batch=max(*args.batch_sizes, 64))  # 64: the sweep uses it
        makers = {name: factory(model, onnx_path) for name, factory in VARIANTS.items()}
        load_before = machine_info()["load_average"]
        records = []
        for batch in args.batch_sizes:
            x = np.random.default_rng(0).random((batch, cfg.in_channels, cfg.image_size, cfg.image_size), np.float32)
            calls = {name: make(x) for name, make in makers.items()}
            times = measure(calls, args)
            for name in calls:
                records.append({"backend": name, "threads": threads[name], "peak_gflops": peak[name],
                                **summarise(times[name], batch, flops, peak[name])})  # fmt: skip
                r = records[-1]
                print(f"{name:25s} batch {batch:3d}: p50 {r['p50_ms']:8.3f} ms  p99 {r['p99_ms']:8.3f} ms  "
                      f"{r['throughput_per_s']:9.0f} img/s  {r['fraction_of_peak']:.1%} of peak")  # fmt: skip
        sweep_rows = sweep(onnx_path, (cfg.in_channels, cfg.image_size, cfg.image_size), args) if args.sweep else []
    machine = machine_info()
    machine["load_average_before"] = load_before
    p50 = {(r["backend"], r["batch_size"]): r["p50_ms"] for r in records}
    bar = {}
    for batch, required in BAR.items():
        if ("pytorch_eager", batch) in p50:
            speedup = p50[("pytorch_eager", batch)] / p50[("onnxruntime_cpu", batch)]
            best_eager = min(p50[(name, batch)] for name in VARIANTS if name.startswith("pytorch"))
            bar[f"batch_{batch}"] = {
                "speedup_p50": speedup,
                "required": required,
                "met": speedup >= required,
                "speedup_vs_best_eager_variant": best_eager / p50[("onnxruntime_cpu", batch)],
            }
    return {
        "model": model_desc, "arch": cfg.arch, "input_shape": [cfg.in_channels, cfg.image_size, cfg.image_size],
        "flops_per_image": flops, "roofline": roof, "machine": machine,
        "settings": {"seconds_per_point": args.seconds, "rounds": args.rounds, "warmup_calls": args.warmup},
        "onnxruntime_tuned_options": TUNED.__dict__, "tuning_notes": TUNING_NOTES,
        "records": records, "bar": bar, "sweep": sweep_rows,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT)
    parser.add_argument("--onnx", help="benchmark this ONNX file instead of exporting the checkpoint")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument("--seconds", type=float, default=6.0, help="timed seconds per (backend, batch size)")
    parser.add_argument("--rounds", type=int, default=6, help="interleaved rounds the seconds are split into")
    parser.add_argument("--warmup", type=int, default=20, help="untimed calls per variant and batch size")
    parser.add_argument("--gemm-size", type=int, default=2048, help="n of the n x n x n fp32 GEMM measuring the peak")
    parser.add_argument("--gemm-seconds", type=float, default=2.0, help="timed seconds per GEMM thread count")
    parser.add_argument("--sweep", action="store_true", help="also measure ONNX Runtime session knobs one by one")
    parser.add_argument("--out", default="reports/bench/inference.json")
    args = parser.parse_args(argv)
    result = run(args)
    atomic_write_json(args.out, result)
    for key, check in result["bar"].items():
        print(f"bar {key}: ONNX Runtime {check['speedup_p50']:.2f}x eager (needs {check['required']}x): "
              f"{'met' if check['met'] else 'NOT met'}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
