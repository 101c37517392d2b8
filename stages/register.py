"""Stage ``register``: log the exported ONNX model to MLflow, tag the version, move aliases.

Refuses (exit 1) unless reports/gate.json approves this exact checkpoint and models/export/model.onnx
was exported from it. ``candidate`` always points at the new version; ``champion`` moves only on
an approved gate and no regression (reports/register.json says why either way).
"""

from __future__ import annotations

import argparse
import sys

from pipeline.config import MlflowSection, load_section
from pipeline.export import GateRefusal, RegisterSection
from pipeline.registry_mlflow import register_release


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--checkpoint", default="models/harden/model.pt")
    parser.add_argument("--gate", default="reports/gate.json")
    parser.add_argument("--onnx", default="models/export/model.onnx")
    parser.add_argument("--export-report", default="reports/export.json")
    parser.add_argument("--dvc-lock", default="dvc.lock")
    parser.add_argument("--report", default="reports/register.json")
    args = parser.parse_args(argv)

    cfg = load_section("register", args.params, schema=RegisterSection)
    experiment = load_section("mlflow", args.params, schema=MlflowSection).experiment
    try:
        result = register_release(
            cfg, experiment=experiment, checkpoint=args.checkpoint, gate=args.gate, onnx_path=args.onnx,
            report=args.report, extra_artifacts=(args.export_report,), dvc_lock=args.dvc_lock,
        )  # fmt: skip
    except GateRefusal as err:
        print(f"register: {err}", file=sys.stderr)
        return 1
    print(f"register: {result['model_name']} version {result['version']} -> alias {cfg.candidate_alias}")
    if result["champion_moved"]:
        print(f"register: champion -> version {result['version']}")
    else:
        print(f"register: champion stays at {result['aliases'][cfg.champion_alias]}: {result['comparison']['reasons']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
