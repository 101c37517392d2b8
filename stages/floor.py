"""Stage floor: the model that knows nothing of the private classes, for the leakage floor."""

from __future__ import annotations

from pathlib import Path

from pipeline.checkpoint import load_checkpoint, save_checkpoint
from pipeline.config import load_section
from pipeline.data import load_labelled, load_split_manifest
from pipeline.floor import FloorSection, build_floor
from pipeline.io import atomic_write_json
from pipeline.stage_utils import stage_parser, utility_report
from pipeline.tracking import MlflowSection, stage_run


def main(argv: list[str] | None = None) -> None:
    args = stage_parser(__doc__, "baseline", "data", "out", "metrics").parse_args(argv)
    section = load_section("floor", args.params, FloorSection)
    experiment = load_section("mlflow", args.params, MlflowSection).experiment
    baseline, _ = load_checkpoint(args.baseline)  # only its architecture is used, never its weights
    public = load_labelled(args.data, "public") if section.kind == "public_only" else None
    with stage_run("floor", {"floor": section.model_dump()}, experiment) as run:
        used = {"public": "training"} if public is not None else {}
        run.log_data(args.data, private_train="evaluation", private_test="evaluation", **used)
        model = build_floor(baseline, section, public)
        train, test = load_labelled(args.data, "private_train"), load_labelled(args.data, "private_test")
        mode = load_split_manifest(args.data)["mode"]
        report = {"kind": section.kind, "mode": mode, **utility_report(model, train, test)}
        save_checkpoint(Path(args.out) / "model.pt", model, {"floor": section.model_dump()})
        atomic_write_json(args.metrics, report)
        run.log_metrics({k: v for k, v in report.items() if isinstance(v, float)})
    print(f"floor ({section.kind}): natural accuracy {report['natural_accuracy']:.4f}")


if __name__ == "__main__":
    main()
