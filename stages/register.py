"""Stage register: log the exported ONNX model to MLflow, tag the version, move the aliases.

Refuses (exit 1) unless the gate report approves this exact checkpoint and the ONNX model was
exported from it. ``candidate`` always moves to the new version; ``champion`` only on an approved
gate and no regression against the current champion (the report says why, either way).
"""

from __future__ import annotations

import sys

from pipeline.config import load_section
from pipeline.export import GateRefusal
from pipeline.registry_mlflow import register_release
from pipeline.registry_mlflow.config import RegisterSection
from pipeline.stage_utils import stage_parser
from pipeline.tracking import MlflowSection


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser(__doc__, "checkpoint", "gate", "onnx", "export-report", "model-card", "report")
    parser.add_argument("--dvc-lock", default="dvc.lock", help="hashed into the version's tags")
    args = parser.parse_args(argv)
    cfg = load_section("register", args.params, RegisterSection)
    experiment = load_section("mlflow", args.params, MlflowSection).experiment
    try:
        result = register_release(
            cfg, experiment=experiment, checkpoint=args.checkpoint, gate=args.gate, onnx_path=args.onnx,
            report=args.report, extra_artifacts=(args.export_report,), dvc_lock=args.dvc_lock,
            model_card=args.model_card,
        )  # fmt: skip
    except GateRefusal as err:
        print(f"register: {err}", file=sys.stderr)
        return 1
    print(f"register: {cfg.model_name} version {result['version']} -> @{cfg.candidate_alias}")
    champion = result["aliases"][cfg.champion_alias]
    why = "" if result["champion_moved"] else f" (not moved: {'; '.join(result['comparison']['reasons'])})"
    print(f"register: @{cfg.champion_alias} -> version {champion}{why}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
