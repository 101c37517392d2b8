"""KServe v2 (Open Inference Protocol) HTTP server: ``python -m pipeline.serve --model ...``."""

from pipeline.serve.backends import BACKENDS, SERVE_ORDER, BackendOptions, list_backends, select_backend
from pipeline.serve.source import ModelSource, resolve_source

__all__ = ["BACKENDS", "SERVE_ORDER", "BackendOptions", "ModelSource", "list_backends", "resolve_source",
           "select_backend"]  # fmt: skip
