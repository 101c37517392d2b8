"""The ``serve`` params section: the KServe v2 server's address, batching and limits."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from pipeline.config import Section
from pipeline.export.config import check_model_name


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
        return check_model_name(value)
