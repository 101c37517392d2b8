"""Load and soak benchmark of the KServe v2 server on loopback: N clients x M requests.

    python bench/serve.py [--model models/export] [--clients 16] [--requests 500]

Starts ``python -m pipeline.serve`` as its own process on 127.0.0.1, warms it up, then runs
``--clients`` threads, each sending ``--requests`` single-image infer requests back to back over a
kept-alive connection. Every answer is checked against the server's own warm-up answer for the
same image (a wrong answer counts as an error). Writes reports/bench/serve.json: latency p50/p95/
p99, throughput, errors, the server's resident memory (server plus its parse workers) before and
after the load, and the server's own batch-size histogram. A benchmark, not a test: it asserts
nothing; its exit code is 1 when any request failed.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from the repo root

import numpy as np  # noqa: E402

from bench.common import load_model, machine_info  # noqa: E402
from pipeline.io import atomic_write_json  # noqa: E402
from pipeline.serve.process import server_process  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = "models/export"


def _rss_mib(pid: int) -> float:
    """Resident memory of ``pid`` and its children (the parse workers), MiB."""
    import psutil

    proc = psutil.Process(pid)
    procs = [proc, *proc.children(recursive=True)]
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total / 2**20


def _server_args(args: argparse.Namespace, model: str, ungated: bool) -> list[str]:
    cmd = ["--model", model, "--model-name", "bench", "--max-batch", str(args.max_batch),
           "--max-wait-ms", str(args.max_wait_ms), "--max-inflight", str(max(64, 2 * args.clients))]  # fmt: skip
    return [*cmd, "--unsafe-ungated"] if ungated else cmd


def _request(image: np.ndarray) -> bytes:
    tensor = {"name": "input", "shape": [1, *image.shape], "datatype": "FP32", "data": image.ravel().tolist()}
    return json.dumps({"inputs": [tensor]}).encode()


def _run_clients(url: str, bodies: list[bytes], expected: list[np.ndarray], args: argparse.Namespace) -> dict:
    import httpx

    latencies: list[list[float]] = [[] for _ in range(args.clients)]
    errors: list[dict[str, int]] = [{} for _ in range(args.clients)]
    start_line = threading.Barrier(args.clients)

    def client(i: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            start_line.wait()
            for j in range(args.requests):
                k = (i + j) % len(bodies)
                start = time.perf_counter()
                try:
                    r = http.post("/v2/models/bench/infer", content=bodies[k])
                    kind = None if r.status_code == 200 else f"http_{r.status_code}"
                    if kind is None and not np.allclose(r.json()["outputs"][0]["data"], expected[k], atol=1e-5):
                        kind = "wrong_answer"
                except httpx.HTTPError as err:
                    kind = type(err).__name__
                latencies[i].append(time.perf_counter() - start)
                if kind is not None:
                    errors[i][kind] = errors[i].get(kind, 0) + 1

    start = time.perf_counter()
    with ThreadPoolExecutor(args.clients) as pool:
        list(pool.map(client, range(args.clients)))
    elapsed = time.perf_counter() - start
    t = np.concatenate([np.asarray(x) for x in latencies])
    by_kind: dict[str, int] = {}
    for e in errors:
        for kind, n in e.items():
            by_kind[kind] = by_kind.get(kind, 0) + n
    return {
        "requests": int(t.size), "seconds": elapsed, "throughput_per_s": t.size / elapsed,
        "p50_ms": float(np.percentile(t, 50) * 1e3), "p95_ms": float(np.percentile(t, 95) * 1e3),
        "p99_ms": float(np.percentile(t, 99) * 1e3), "max_ms": float(t.max() * 1e3),
        "errors": sum(by_kind.values()), "errors_by_kind": by_kind,
    }  # fmt: skip


def _batch_stats(metrics: str) -> dict[str, float]:
    found = {m[0]: float(m[1]) for m in re.findall(r"^inference_batch_size_(sum|count) ([\d.e+]+)$", metrics, re.M)}
    count = found.get("count", 0.0)
    return {"backend_calls": count, "mean_rows_per_call": found.get("sum", 0.0) / count if count else 0.0}


def _model_to_serve(args: argparse.Namespace, tmp: Path) -> tuple[str, bool, str]:
    """(--model value, needs --unsafe-ungated, description). Without an export, an untrained stand-in."""
    if args.model or Path(DEFAULT_MODEL, "model.onnx").is_file():
        model = args.model or DEFAULT_MODEL
        return model, args.unsafe_ungated, model
    from pipeline.export.onnx_export import export_onnx

    net, desc = load_model("models/harden/model.pt")
    path = tmp / "model.onnx"
    export_onnx(net, path, max_batch=args.max_batch)
    return str(path), True, f"{desc}; exported for this run (ungated)"


def run(args: argparse.Namespace) -> dict[str, Any]:
    import httpx

    with tempfile.TemporaryDirectory(prefix="calor-bench-serve-") as tmp_name:
        tmp = Path(tmp_name)
        model, ungated, desc = _model_to_serve(args, tmp)
        with server_process(_server_args(args, model, ungated), tmp / "server.log", ROOT, timeout_s=180) as server:
            url = server.url
            meta = httpx.get(f"{url}/v2/models/bench").json()
            dims = meta["inputs"][0]["shape"][1:]
            rng = np.random.default_rng(0)
            images = [rng.random(dims, dtype=np.float32) for _ in range(args.distinct_images)]
            bodies = [_request(x) for x in images]
            expected = []
            with httpx.Client(base_url=url, timeout=60) as http:
                for body in bodies:  # also the client-side warm-up
                    expected.append(np.asarray(http.post("/v2/models/bench/infer", content=body).json()
                                               ["outputs"][0]["data"]))  # fmt: skip
                for _ in range(args.warmup):
                    http.post("/v2/models/bench/infer", content=bodies[0])
            rss_before = _rss_mib(server.process.pid)
            load = _run_clients(url, bodies, expected, args)
            rss_after = _rss_mib(server.process.pid)
            batches = _batch_stats(httpx.get(f"{url}/metrics").text)
    return {
        "model": desc, "backend": meta["parameters"]["backend"], "clients": args.clients,
        "requests_per_client": args.requests, "max_batch": args.max_batch, "max_wait_ms": args.max_wait_ms,
        **load, "rss_mib_before": rss_before, "rss_mib_after": rss_after, "rss_mib_growth": rss_after - rss_before,
        "server_batches": batches, "machine": machine_info(),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help=f"what the server serves (default {DEFAULT_MODEL}, else an untrained stand-in)")
    parser.add_argument("--unsafe-ungated", action="store_true", help="pass --unsafe-ungated to the server")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=500, help="requests per client")
    parser.add_argument("--max-batch", type=int, default=32)
    parser.add_argument("--max-wait-ms", type=float, default=2.0)
    parser.add_argument("--warmup", type=int, default=50, help="untimed requests before the load")
    parser.add_argument("--distinct-images", type=int, default=8, help="images the clients cycle through")
    parser.add_argument("--out", default="reports/bench/serve.json")
    args = parser.parse_args(argv)
    result = run(args)
    atomic_write_json(args.out, result)
    print(f"{result['requests']} requests, {args.clients} clients: p50 {result['p50_ms']:.2f} ms, "
          f"p99 {result['p99_ms']:.2f} ms, {result['throughput_per_s']:.0f} req/s, {result['errors']} errors; "
          f"RSS {result['rss_mib_before']:.0f} -> {result['rss_mib_after']:.0f} MiB")  # fmt: skip
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
