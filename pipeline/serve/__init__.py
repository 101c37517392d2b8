"""KServe v2 (Open Inference Protocol) HTTP server: ``python -m pipeline.serve --model ...``.

Names are imported lazily: the server's parse worker processes import ``pipeline.serve.protocol``
and must not pull in the backends (and with them torch and ONNX Runtime).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BACKENDS": "pipeline.serve.backends", "SERVE_ORDER": "pipeline.serve.backends",
    "BackendOptions": "pipeline.serve.backends", "list_backends": "pipeline.serve.backends",
    "select_backend": "pipeline.serve.backends", "ModelSource": "pipeline.serve.source",
    "resolve_source": "pipeline.serve.source",
}  # fmt: skip
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'pipeline.serve' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
