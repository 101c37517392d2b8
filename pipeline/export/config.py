"""The ``export`` params section, and the model-name rule the release half shares.

One frozen section per stage (the ``register`` section lives in ``pipeline.registry_mlflow``, the
``serve`` one in ``pipeline.serve``), so editing a serving knob never re-runs the export and a typo
in params.yaml is an error naming the key.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from pipeline.config import Section

# Triton and MLflow both accept this alphabet; keeping one rule avoids a name valid in one only.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def check_model_name(value: str) -> str:
    """The one naming rule for exported, registered and served models."""
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
        return check_model_name(value)

    @model_validator(mode="after")
    def _opt_within_max(self) -> ExportSection:
        if self.tensorrt.opt_batch > self.max_batch:
            raise ValueError(f"tensorrt.opt_batch ({self.tensorrt.opt_batch}) must be <= max_batch ({self.max_batch})")
        return self
