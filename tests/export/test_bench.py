"""The benchmark scripts run end to end (tiny budgets) and the GPU checks skip cleanly without a GPU."""

import json

import torch

from bench import gpu_checks, inference


def test_gpu_checks_skip_cleanly_without_cuda(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "gpu.json"
    assert gpu_checks.main(["--out", str(out)]) == 0
    assert json.loads(out.read_text())["status"].startswith("skipped: no CUDA GPU")


def test_inference_benchmark_writes_records_per_backend_and_batch(tmp_path, release):
    out = tmp_path / "inference.json"
    argv = ["--checkpoint", str(release.checkpoint), "--batch-sizes", "1", "2", "--seconds", "0.05", "--rounds", "1",
            "--warmup", "1", "--gemm-size", "128", "--gemm-seconds", "0.05", "--out", str(out)]  # fmt: skip
    assert inference.main(argv) == 0
    report = json.loads(out.read_text())
    assert {(r["backend"], r["batch_size"]) for r in report["records"]} == {
        (b, n) for b in inference.VARIANTS for n in (1, 2)
    }
    record = report["records"][0]
    assert {"p50_ms", "p99_ms", "throughput_per_s", "gflop_per_s", "fraction_of_peak", "peak_gflops"} <= set(record)
    roof = report["roofline"]
    assert report["flops_per_image"] > 0 and roof["flop_counts_agree"]
    assert roof["flops_per_image"] == roof["flops_per_image_by_layers"]
    for r in report["records"]:  # each variant is divided by the GEMM peak measured at its own thread count
        gemm = roof["gemm"][str(r["threads"])]
        assert r["peak_gflops"] == gemm["gflops_best"] > 0
        assert r["fraction_of_peak"] == r["gflop_per_s"] / r["peak_gflops"]
    assert roof["memory_bandwidth_gbs"] > 0
    assert "batch_1" in report["bar"] and "cores_available" in report["machine"]


def test_serve_benchmark_writes_latency_errors_and_memory(tmp_path, release):
    from bench import serve

    out = tmp_path / "serve.json"
    argv = ["--model", str(release.out), "--clients", "2", "--requests", "5", "--warmup", "1", "--max-batch", "8",
            "--distinct-images", "2", "--out", str(out)]  # fmt: skip
    assert serve.main(argv) == 0
    report = json.loads(out.read_text())
    assert report["requests"] == 10 and report["errors"] == 0 and report["errors_by_kind"] == {}
    assert 0 < report["p50_ms"] <= report["p99_ms"] and report["throughput_per_s"] > 0
    assert report["rss_mib_before"] > 0 and report["rss_mib_after"] > 0
    assert report["backend"] == "onnxruntime_cpu" and report["server_batches"]["backend_calls"] >= 1
