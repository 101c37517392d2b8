"""Release half of the pipeline: gate check, ONNX/TensorRT export, Triton repository.

Importing the package imports ``formats`` so the format table is never half-filled; TensorRT
itself is only imported when an engine is built (optional extra ``.[tensorrt]``).
"""

from pipeline.export.config import ExportSection, ParitySection, TensorRTSection
from pipeline.export.formats import FORMATS, ExportContext, ExportFailure, list_formats
from pipeline.export.gate import ApprovedGate, GateRefusal, require_approved
from pipeline.export.runner import run_export

__all__ = [
    "ExportSection", "ParitySection", "TensorRTSection",
    "FORMATS", "ExportContext", "ExportFailure", "list_formats",
    "ApprovedGate", "GateRefusal", "require_approved", "run_export",
]  # fmt: skip
