"""The export stage as a function: gate check → every format in the table → Triton repo → report."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pipeline.export.config import ExportSection
from pipeline.export.formats import ExportContext, ExportFailure, list_formats
from pipeline.export.gate import require_approved
from pipeline.export.onnx_export import input_spec, output_spec
from pipeline.export.parity import load_private_test
from pipeline.export.provenance import build_provenance, to_metadata_props
from pipeline.export.triton import write_repository
from pipeline.io import atomic_write_json


def run_export(
    cfg: ExportSection,
    *,
    checkpoint: str | os.PathLike,
    gate: str | os.PathLike,
    out_dir: str | os.PathLike,
    report: str | os.PathLike,
    data: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Export the gate-approved ``checkpoint``; write ``report`` even when a format fails.

    Raises:
        GateRefusal: the gate report does not approve this exact checkpoint (nothing is written).
        ExportFailure: a produced artifact failed its parity check (the report says which).
    """
    approved = require_approved(gate, checkpoint)
    model, meta = approved.load_model()  # the bytes that were hashed, not the path reopened
    provenance = build_provenance(meta, approved, cfg.model_dump())
    images = load_private_test(data) if data is not None else None
    ctx = ExportContext(model, cfg, Path(out_dir), to_metadata_props(provenance), images)
    result: dict[str, Any] = {
        "checkpoint": str(checkpoint),
        "checkpoint_sha256": approved.checkpoint_sha256,
        "gate": {"path": str(gate), "verdict": approved.verdict, "sha256": approved.report_sha256},
        "max_batch": cfg.max_batch,
        "input": {"name": input_spec(model).name, "dims": list(input_spec(model).dims), "datatype": "FP32"},
        "output": {"name": output_spec(model).name, "dims": list(output_spec(model).dims), "datatype": "FP32"},
        "provenance": provenance,
        "formats": {},
    }
    try:
        for fmt in list_formats():
            result["formats"][fmt.name] = fmt.run(ctx)
        trt_status = result["formats"].get("tensorrt", {}).get("status", "")
        if cfg.tensorrt.required and trt_status != "built":
            raise ExportFailure(f"export.tensorrt.required is true but the engine was not built ({trt_status})", {})
    except ExportFailure as err:
        if err.section:
            result["formats"][fmt.name] = err.section
        result["status"] = f"failed: {err}"
        atomic_write_json(report, result)
        raise
    models = write_repository(
        Path(out_dir) / "triton", cfg.name, ctx.artifacts, [input_spec(model)], [output_spec(model)],
        max_batch_size=cfg.max_batch, max_queue_delay_us=cfg.triton_max_queue_delay_us,
        instance_kind=cfg.triton_instance_kind,
    )  # fmt: skip
    result["triton"] = {"repository": str(Path(out_dir) / "triton"), "models": models}
    result["status"] = "exported"
    atomic_write_json(report, result)
    return result
