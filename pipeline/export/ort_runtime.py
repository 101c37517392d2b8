"""ONNX Runtime sessions, made one way for parity checks, the server and the benchmark.

ONNX Runtime silently drops an unavailable provider (only a warning), even the only one asked
for, so ``create_session`` checks ``session.get_providers()`` and raises when the first provider
asked for is not the one in use.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

GPU_EXTRA_HINT = "install the GPU extra instead of onnxruntime: pip uninstall onnxruntime && pip install .[gpu]"


@dataclass(frozen=True)
class OrtOptions:
    """Session knobs the benchmark tunes. ``None`` threads = ONNX Runtime's default (physical cores)."""

    graph_optimization: str = "all"  # disable | basic | extended | layout | all
    intra_op_threads: int | None = None
    inter_op_threads: int | None = 1
    execution_mode: str = "sequential"  # sequential | parallel
    allow_spinning: bool = True


def _import_ort():  # noqa: ANN202 - the module
    try:
        import onnxruntime
    except ImportError as err:
        raise ImportError("onnxruntime is not installed: pip install onnxruntime (CPU) or .[gpu] (CUDA)") from err
    return onnxruntime


def session_options(options: OrtOptions):  # noqa: ANN201 - onnxruntime.SessionOptions
    ort = _import_ort()
    levels = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }
    if hasattr(ort.GraphOptimizationLevel, "ORT_ENABLE_LAYOUT"):
        levels["layout"] = ort.GraphOptimizationLevel.ORT_ENABLE_LAYOUT
    modes = {"sequential": ort.ExecutionMode.ORT_SEQUENTIAL, "parallel": ort.ExecutionMode.ORT_PARALLEL}
    for value, table, what in ((options.graph_optimization, levels, "graph_optimization"),
                               (options.execution_mode, modes, "execution_mode")):  # fmt: skip
        if value not in table:
            raise ValueError(f"{what} must be one of {sorted(table)}, got {value!r}")
    so = ort.SessionOptions()
    so.graph_optimization_level = levels[options.graph_optimization]
    so.execution_mode = modes[options.execution_mode]
    if options.intra_op_threads is not None:
        so.intra_op_num_threads = options.intra_op_threads
    if options.inter_op_threads is not None:
        so.inter_op_num_threads = options.inter_op_threads
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if options.allow_spinning else "0")
    so.log_severity_level = 3  # errors only: the provider check below reports what matters
    return so


def available_providers() -> list[str]:
    return list(_import_ort().get_available_providers())


def create_session(
    path: str | os.PathLike,
    providers: list[str | tuple[str, dict]] | None = None,
    options: OrtOptions | None = None,
):  # noqa: ANN201 - onnxruntime.InferenceSession
    """Session on ``providers`` (default CPU); raise if the first one asked for is not in use."""
    ort = _import_ort()
    providers = providers or ["CPUExecutionProvider"]
    wanted = providers[0] if isinstance(providers[0], str) else providers[0][0]
    session = ort.InferenceSession(os.fspath(path), session_options(options or OrtOptions()), providers=providers)
    used = session.get_providers()
    if not used or used[0] != wanted:
        raise RuntimeError(f"ONNX Runtime asked for {wanted} but uses {used}; {GPU_EXTRA_HINT}")
    return session


def run_session(session, x: np.ndarray) -> np.ndarray:  # noqa: ANN001 - onnxruntime.InferenceSession
    """One input, first output; the input name comes from the model, not from a constant."""
    name = session.get_inputs()[0].name
    return session.run(None, {name: np.ascontiguousarray(x, dtype=np.float32)})[0]
