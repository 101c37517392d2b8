"""Stage ``export``: ship the gate-approved hardened checkpoint as ONNX (+ TensorRT, Triton repo).

Refuses (exit 1, message on stderr) unless reports/gate.json approves this exact checkpoint.
"""

from __future__ import annotations

import argparse
import sys

from pipeline.config import load_section
from pipeline.export import ExportFailure, ExportSection, GateRefusal, run_export


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--checkpoint", default="models/harden/model.pt")
    parser.add_argument("--gate", default="reports/gate.json")
    parser.add_argument("--data", default="data/prepared/private_test.npz", help="top-1 agreement split")
    parser.add_argument("--out", default="models/export")
    parser.add_argument("--report", default="reports/export.json")
    args = parser.parse_args(argv)

    cfg = load_section("export", args.params, schema=ExportSection)
    try:
        result = run_export(cfg, checkpoint=args.checkpoint, gate=args.gate, out_dir=args.out,
                            report=args.report, data=args.data)  # fmt: skip
    except (GateRefusal, ExportFailure) as err:
        print(f"export: {err}", file=sys.stderr)
        return 1
    for name, section in result["formats"].items():
        print(f"export: {name}: {section['status']}")
    print(f"export: triton models {result['triton']['models']} -> {result['triton']['repository']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
