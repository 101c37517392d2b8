"""Params sections of the release half of the pipeline: export, register, serve.

One frozen section per stage (``load_section("export", schema=ExportSection)``), so editing a
serving knob never re-runs the export and a typo in params.yaml is an error naming the key.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from pipeline.config import Section

# Triton and MLflow both accept this alphabet; keeping one rule avoids a name valid in one only.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _check_name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(f"model name must match {_NAME.pattern}, got {value!r}")
    return value


class ParitySection(Section):
    """ONNX Runtime (CPU, fp32) against PyTorch: fp32 agrees to ~1e-7, so these are generous."""

    atol: float = Field(1e-4, gt=0)
    rtol: float = Field(1e-4, ge=0)
    batch_sizes: list[int] = Field(default_factory=lambda: [1, 7])  # max_batch is always added
    min_top1_agreement: float = Field(0.999, gt=0, le=1)

    @field_validator("batch_sizes")
    @classmethod
    def _positive(cls, value: list[int]) -> list[int]:
        if not value or any(b < 1 for b in value):
            raise ValueError(f"batch_sizes must be a non-empty list of positive ints, got {value}")
        return value


class TensorRTSection(Section):
    """Optional engine build; skipped (and recorded) when tensorrt or a CUDA GPU is missing."""

    enabled: bool = True
    required: bool = False  # true: a skipped or failed engine build fails the stage
    precision: Literal["fp16", "fp32"] = "fp16"
    workspace_mib: int = Field(1024, ge=64)
    opt_batch: int = Field(8, ge=1)
    atol: float = Field(5e-2, gt=0)  # fp16 engines: loose atol plus top-1 agreement on real data
    min_top1_agreement: float = Field(0.99, gt=0, le=1)


class ExportSection(Section):
    name: str = "calor-classifier"  # Triton model name (the TensorRT one gets "_trt")
    max_batch: int = Field(64, ge=1, le=4096)
    opset: int = Field(20, ge=18)
    parity: ParitySection = Field(default_factory=ParitySection)
    tensorrt: TensorRTSection = Field(default_factory=TensorRTSection)
    triton_max_queue_delay_us: int = Field(1000, ge=0)
    triton_instance_kind: Literal["KIND_GPU", "KIND_CPU"] = "KIND_GPU"

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        return _check_name(value)

    @model_validator(mode="after")
    def _opt_within_max(self) -> ExportSection:
        if self.tensorrt.opt_batch > self.max_batch:
            raise ValueError(f"tensorrt.opt_batch ({self.tensorrt.opt_batch}) must be <= max_batch ({self.max_batch})")
        return self


class RegisterSection(Section):
    """MLflow registry: aliases only (stages are deprecated). The experiment is the ``mlflow`` section's."""

    model_name: str = "calor-classifier"
    candidate_alias: str = "candidate"
    champion_alias: str = "champion"
    # Allowed regression against the champion (0 = strictly no worse).
    natural_accuracy_tolerance: float = Field(0.0, ge=0, le=1)
    worst_case_acc1_tolerance: float = Field(0.0, ge=0, le=1)

    @field_validator("model_name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        return _check_name(value)

    @model_validator(mode="after")
    def _distinct_aliases(self) -> RegisterSection:
        if self.candidate_alias == self.champion_alias:
            raise ValueError(f"candidate_alias and champion_alias must differ, both are {self.champion_alias!r}")
        return self


class ServeSection(Section):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    model_name: str = "calor-classifier"
    max_batch: int = Field(32, ge=1, le=4096)
    max_wait_ms: float = Field(2.0, ge=0, le=1000)
    max_body_bytes: int = Field(8 * 1024 * 1024, ge=1024)
    warmup_iterations: int = Field(3, ge=1)
    tensorrt_precision: Literal["fp16", "fp32"] = "fp16"  # TensorRT 11 builds fp32 regardless (see trt_build)
    engine_cache_dir: str = "models/serve/tensorrt"  # engines this server built; never load foreign ones
    max_inflight: int = Field(64, ge=1)  # infer requests being read, parsed or computed; more get 503
    body_timeout_s: float = Field(30.0, gt=0)  # a client that has not sent its whole body by then gets 408
    parse_workers: int = Field(1, ge=0)  # processes parsing large bodies off the event loop (0: inline)
    inline_parse_bytes: int = Field(256 * 1024, ge=0)  # JSON parts up to this size are parsed inline
    docs: bool = False  # /docs and /openapi.json (off: a release server exposes only the protocol)

    @field_validator("model_name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        return _check_name(value)
