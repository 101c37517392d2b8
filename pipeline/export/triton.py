"""NVIDIA Triton model repository: ``<repo>/<model>/config.pbtxt`` + ``<repo>/<model>/1/<file>``.

One row per artifact kind in ``TRITON_PLATFORMS``. The ONNX model is always written (portable);
an engine, when one was built, goes to its own ``<name>_trt`` model because it only runs on the
GPU model and TensorRT version it was built with.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from pipeline.export.onnx_export import TensorSpec
from pipeline.io import temp_dir_beside


@dataclass(frozen=True)
class TritonPlatform:
    platform: str
    filename: str
    suffix: str  # appended to the model name


TRITON_PLATFORMS: dict[str, TritonPlatform] = {
    "onnx": TritonPlatform("onnxruntime_onnx", "model.onnx", ""),
    "tensorrt": TritonPlatform("tensorrt_plan", "model.plan", "_trt"),
}
TRITON_DTYPES = {"FP32": "TYPE_FP32", "FP16": "TYPE_FP16", "INT64": "TYPE_INT64"}


def _tensor_block(spec: TensorSpec) -> str:
    dims = ", ".join(str(d) for d in spec.dims)
    return f'  {{\n    name: "{spec.name}"\n    data_type: {TRITON_DTYPES[spec.datatype]}\n    dims: [ {dims} ]\n  }}'


def config_pbtxt(
    name: str,
    platform: str,
    inputs: list[TensorSpec],
    outputs: list[TensorSpec],
    *,
    max_batch_size: int,
    max_queue_delay_us: int,
    instance_kind: str = "KIND_GPU",
) -> str:
    """Text-format ModelConfig; with ``max_batch_size > 0`` the dims exclude the batch dim."""
    if max_batch_size < 1:
        raise ValueError(f"max_batch_size must be >= 1 for a dynamically batched model, got {max_batch_size}")
    return "\n".join([
        f'name: "{name}"',
        f'platform: "{platform}"',
        f"max_batch_size: {max_batch_size}",
        "input [", ",\n".join(_tensor_block(s) for s in inputs), "]",
        "output [", ",\n".join(_tensor_block(s) for s in outputs), "]",
        "dynamic_batching {", f"  max_queue_delay_microseconds: {max_queue_delay_us}", "}",
        "instance_group [", "  {", "    count: 1", f"    kind: {instance_kind}", "  }", "]",
        "",
    ])  # fmt: skip


def write_repository(
    repo_dir: str | os.PathLike,
    name: str,
    artifacts: dict[str, str | os.PathLike],
    inputs: list[TensorSpec],
    outputs: list[TensorSpec],
    *,
    max_batch_size: int,
    max_queue_delay_us: int,
    instance_kind: str = "KIND_GPU",
) -> list[str]:
    """Write the repository for every artifact kind Triton can serve; return the model names.

    Built in a temporary sibling directory and swapped in, so a crash never leaves a repository
    mixing two exports, and a model dropped since the last export (no engine now) disappears.
    """
    repo_dir = Path(repo_dir)
    staging = temp_dir_beside(repo_dir)  # mode from the umask (mkdtemp's 0700 would stay on the repository)
    names = []
    try:
        for kind, source in artifacts.items():
            if kind not in TRITON_PLATFORMS:
                continue
            row = TRITON_PLATFORMS[kind]
            model_name = name + row.suffix
            version_dir = staging / model_name / "1"
            version_dir.mkdir(parents=True)
            shutil.copyfile(source, version_dir / row.filename)
            text = config_pbtxt(
                model_name, row.platform, inputs, outputs, max_batch_size=max_batch_size,
                max_queue_delay_us=max_queue_delay_us, instance_kind=instance_kind,
            )  # fmt: skip
            (staging / model_name / "config.pbtxt").write_text(text)
            names.append(model_name)
        old = repo_dir.with_name(f".{repo_dir.name}.old")
        if old.exists():
            shutil.rmtree(old)
        if repo_dir.exists():
            repo_dir.rename(old)
        staging.rename(repo_dir)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return names
