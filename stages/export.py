"""Stage export: ship the gate-approved hardened checkpoint as ONNX (+ TensorRT engine, Triton repo).

Refuses (exit 1, reasons on stderr) unless the gate report approves this exact checkpoint, and
fails when the ONNX model does not match PyTorch (the parity report is written either way).
"""

from __future__ import annotations

import sys

from pipeline.config import load_section
from pipeline.export import ExportFailure, ExportSection, GateRefusal, run_export
from pipeline.stage_utils import stage_parser


def main(argv: list[str] | None = None) -> int:
    args = stage_parser(__doc__, "checkpoint", "gate", "data", "out", "report").parse_args(argv)
    cfg = load_section("export", args.params, ExportSection)
    try:
        result = run_export(cfg, checkpoint=args.checkpoint, gate=args.gate, out_dir=args.out,
                            report=args.report, data=args.data)  # fmt: skip
    except (GateRefusal, ExportFailure) as err:
        print(f"export: {err}", file=sys.stderr)
        return 1
    for name, section in result["formats"].items():
        print(f"export: {name}: {section['status']}")
    print(f"export: Triton models {result['triton']['models']} in {result['triton']['repository']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
