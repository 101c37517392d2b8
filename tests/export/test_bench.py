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
    argv = ["--checkpoint", str(release.checkpoint), "--batch-sizes", "1", "2", "--seconds", "0.05",
            "--rounds", "1", "--warmup", "1", "--peak-gflops", "100", "--out", str(out)]  # fmt: skip
    assert inference.main(argv) == 0
    report = json.loads(out.read_text())
    assert {(r["backend"], r["batch_size"]) for r in report["records"]} == {
        (b, n) for b in inference.VARIANTS for n in (1, 2)
    }
    record = report["records"][0]
    assert {"p50_ms", "p99_ms", "throughput_per_s", "gflop_per_s", "fraction_of_peak"} <= set(record)
    assert report["flops_per_image"] > 0 and report["peak_gflops"] == 100
    assert "batch_1" in report["bar"] and "cores_available" in report["machine"]
