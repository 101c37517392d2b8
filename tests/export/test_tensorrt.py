"""TensorRT is optional: a missing package or GPU is a recorded skip; TRT 10 vs 11 precision branches."""

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from pipeline.export import ExportContext
from pipeline.export.formats import FORMATS
from pipeline.export.trt_build import EngineBuildError, build_engine, engine_stem, tensorrt_available
from tests.export.release_fixtures import export_config, tiny_model


def _ctx(tmp_path, **cfg):
    return ExportContext(tiny_model(), export_config(**cfg), tmp_path, metadata={})


def test_missing_tensorrt_is_a_recorded_skip(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # makes `import tensorrt` raise ImportError
    ok, reason = tensorrt_available()
    assert not ok and "pip install .[tensorrt]" in reason
    section = FORMATS.get("tensorrt").run(_ctx(tmp_path))
    assert section["status"].startswith("skipped: tensorrt is not installed")


def test_missing_gpu_is_a_recorded_skip(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorrt", SimpleNamespace(__version__="10.13.0"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    section = FORMATS.get("tensorrt").run(_ctx(tmp_path))
    assert section["status"] == "skipped: no CUDA GPU (torch.cuda.is_available() is False)"


def test_disabled_in_params_is_a_recorded_skip(tmp_path):
    section = FORMATS.get("tensorrt").run(_ctx(tmp_path, tensorrt={"enabled": False}))
    assert section["status"].startswith("skipped: disabled in params")


def test_the_format_table_declares_gpu_and_extra():
    row = FORMATS.get("tensorrt")
    assert row.needs_gpu and row.extra == "tensorrt" and row.suffix == ".engine"
    assert not FORMATS.get("onnx").needs_gpu


class FakeTensorRT:
    """Just enough of the tensorrt module to record what the builder was asked to do."""

    class Logger:
        WARNING = 2

        def __init__(self, level):
            self.level = level

    BuilderFlag = SimpleNamespace(FP16="FP16")
    MemoryPoolType = SimpleNamespace(WORKSPACE="WORKSPACE")

    def __init__(self, version, parse_ok=True, build_ok=True):
        self.__version__ = version
        self.calls = {"flags": [], "profile": None, "pool": None}
        self.parse_ok, self.build_ok = parse_ok, build_ok
        fake = self

        class Config:
            def set_flag(self, flag):
                fake.calls["flags"].append(flag)

            def set_memory_pool_limit(self, pool, size):
                fake.calls["pool"] = (pool, size)

            def add_optimization_profile(self, profile):
                fake.calls["profile"] = profile.shapes

            def create_timing_cache(self, data):
                return SimpleNamespace(serialize=lambda: b"cache:" + data)

            def set_timing_cache(self, cache, ignore_mismatch):
                self.cache = cache

            def get_timing_cache(self):
                return SimpleNamespace(serialize=lambda: b"timing-cache")

        class Profile:
            shapes = {}

            def set_shape(self, name, lo, opt, hi):
                self.shapes = {name: (lo, opt, hi)}

        class Builder:
            def __init__(self, logger):
                pass

            def create_network(self, flags):
                return SimpleNamespace(flags=flags)

            def create_builder_config(self):
                return Config()

            def create_optimization_profile(self):
                return Profile()

            def build_serialized_network(self, network, config):
                return b"engine-bytes" if fake.build_ok else None

        class OnnxParser:
            num_errors = 1

            def __init__(self, network, logger):
                pass

            def parse_from_file(self, path):
                return fake.parse_ok

            def get_error(self, i):
                return "Unsupported op: Frobnicate"

        self.Builder, self.OnnxParser = Builder, OnnxParser


def _build(trt, tmp_path, precision="fp16"):
    onnx_path = tmp_path / "model.onnx"
    onnx_path.write_bytes(b"onnx")
    return build_engine(trt, onnx_path, tmp_path / "engines", gpu_name="NVIDIA H200", input_name="input",
                        input_dims=(1, 28, 28), max_batch=64, opt_batch=8, precision=precision)  # fmt: skip


def test_tensorrt_10_sets_the_fp16_builder_flag(tmp_path):
    trt = FakeTensorRT("10.13.0")
    build = _build(trt, tmp_path)
    assert trt.calls["flags"] == ["FP16"] and build.precision.built == "fp16"
    assert trt.calls["profile"] == {"input": ((1, 1, 28, 28), (8, 1, 28, 28), (64, 1, 28, 28))}
    engine = Path(build.engine_path)
    assert engine.name == "model_nvidia-h200_trt10.13.0.engine" and engine.read_bytes() == b"engine-bytes"
    assert Path(build.timing_cache_path).read_bytes() == b"timing-cache" and build.build_seconds >= 0


def test_tensorrt_11_builds_fp32_and_says_fp16_needs_a_converted_model(tmp_path):
    trt = FakeTensorRT("11.0.0")
    build = _build(trt, tmp_path)
    assert trt.calls["flags"] == []  # BuilderFlag.FP16 no longer exists there
    assert (build.precision.requested, build.precision.built) == ("fp16", "fp32")
    assert "strongly typed" in build.precision.note and "ModelOpt" in build.precision.note
    assert "trt11.0.0" in Path(build.engine_path).name


def test_fp32_request_sets_no_flag_on_either_version(tmp_path):
    for version in ("10.13.0", "11.0.0"):
        trt = FakeTensorRT(version)
        assert _build(trt, tmp_path, precision="fp32").precision.built == "fp32" and trt.calls["flags"] == []


@pytest.mark.parametrize(
    ("trt", "message"),
    [
        (FakeTensorRT("9.2.0"), "not supported"),
        (FakeTensorRT("10.13.0", parse_ok=False), "Unsupported op: Frobnicate"),
        (FakeTensorRT("10.13.0", build_ok=False), "returned None"),
    ],
)
def test_build_failures_are_errors_with_tensorrt_s_reason(tmp_path, trt, message):
    with pytest.raises(EngineBuildError, match=message):
        _build(trt, tmp_path)


def test_engine_name_is_keyed_by_gpu_and_version():
    assert engine_stem("NVIDIA GeForce RTX 4090", "10.9.0.34") == "model_nvidia-geforce-rtx-4090_trt10.9.0.34"
