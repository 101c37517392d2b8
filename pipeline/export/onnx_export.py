"""ONNX export with the dynamo exporter: one self-contained file, dynamic batch, provenance inside.

``external_data=False`` everywhere: the model is small, and one file is what Triton, MLflow and
the server all load the same way (no ``model.onnx.data`` to forget when copying).
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from pipeline.models import Classifier

INPUT_NAME = "input"
OUTPUT_NAME = "logits"


@dataclass(frozen=True)
class TensorSpec:
    """One input or output without the batch dim (what Triton's config and KServe metadata want)."""

    name: str
    dims: tuple[int, ...]
    datatype: str = "FP32"


def input_spec(model: Classifier) -> TensorSpec:
    cfg = model.config
    return TensorSpec(INPUT_NAME, (cfg.in_channels, cfg.image_size, cfg.image_size))


def output_spec(model: Classifier) -> TensorSpec:
    return TensorSpec(OUTPUT_NAME, (model.config.num_classes,))


def example_input(model: Classifier, batch: int = 2, seed: int = 0) -> torch.Tensor:
    """Uniform [0, 1] images: the value range the pipeline feeds the model."""
    generator = torch.Generator().manual_seed(seed)
    return torch.rand((batch, *input_spec(model).dims), generator=generator)


def export_onnx(
    model: Classifier,
    path: str | os.PathLike,
    *,
    max_batch: int,
    opset: int = 20,
    metadata: dict[str, str] | None = None,
) -> float:
    """Export ``model`` (put in eval mode) to ``path``; return the export time in seconds.

    Eval mode matters twice: BatchNorm uses its running stats, and the exporter's optimizer can
    then fold Conv+BN into one Conv (what makes ONNX Runtime faster than eager PyTorch here).
    """
    import onnx

    model.eval()
    # batch 2 as the example: torch.export specialises a dim whose example value is 1.
    example = example_input(model, batch=min(2, max_batch) if max_batch > 1 else 1)
    dynamic = {"x": {0: torch.export.Dim("batch", min=1, max=max_batch)}} if max_batch > 1 else None
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter warns about its own internals
        program = torch.onnx.export(
            model, (example,), dynamo=True, external_data=False, opset_version=opset,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], dynamic_shapes=dynamic,
            optimize=True, verbose=False,
        )  # fmt: skip
    if program is None:
        raise RuntimeError("torch.onnx.export(dynamo=True) returned no program")
    proto = program.model_proto
    if metadata:
        _set_metadata(proto, metadata)
    seconds = time.perf_counter() - start
    onnx.save_model(proto, os.fspath(path), save_as_external_data=False)
    return seconds


def _set_metadata(proto, metadata: dict[str, str]) -> None:  # noqa: ANN001 - onnx.ModelProto, imported lazily
    """Merge into metadata_props (``onnx.helper.set_model_props`` would drop the exporter's keys)."""
    kept = [(p.key, p.value) for p in proto.metadata_props if p.key not in metadata]
    del proto.metadata_props[:]
    for key, value in [*kept, *metadata.items()]:
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, str(value)


def check_onnx(path: str | os.PathLike) -> dict[str, int]:
    """``onnx.checker`` with full shape inference; return what the report records."""
    import onnx

    onnx.checker.check_model(os.fspath(path), full_check=True)
    proto = onnx.load(os.fspath(path), load_external_data=False)
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), -1)
    return {"ir_version": int(proto.ir_version), "opset": int(opset), "size_bytes": Path(path).stat().st_size}


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    import onnx

    proto = onnx.load(os.fspath(path), load_external_data=False)
    return {p.key: p.value for p in proto.metadata_props}
