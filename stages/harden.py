"""Stage harden: apply the configured defense (CALoR by default) to the trained baseline."""

from __future__ import annotations

from pathlib import Path

from pipeline.checkpoint import load_checkpoint, save_checkpoint
from pipeline.config import load_section
from pipeline.data import load_labelled
from pipeline.defenses import DefenseData, HardenSection, get_defense
from pipeline.io import atomic_write_json
from pipeline.reports import read_report
from pipeline.stage_utils import stage_parser, utility_report, write_curve
from pipeline.tracking import MlflowSection, stage_run


def main(argv: list[str] | None = None) -> None:
    args = stage_parser(__doc__, "data", "baseline", "baseline-metrics", "out", "metrics", "plot").parse_args(argv)
    section = load_section("harden", args.params, HardenSection)
    spec = get_defense(section.defense)
    settings = section.defense_settings()
    experiment = load_section("mlflow", args.params, MlflowSection).experiment
    baseline, _ = load_checkpoint(args.baseline)
    baseline_report = read_report(args.baseline_metrics)
    data = DefenseData(load_labelled(args.data, "private_train"), load_labelled(args.data, "private_test"))
    params = {"defense": spec.name, spec.name: settings.model_dump()}
    with stage_run("harden", params, experiment) as run:
        run.log_data(args.data, private_train="training", private_test="evaluation")
        result = spec.apply(baseline, settings, data, on_epoch=lambda phase: lambda e, m: run.log_epoch(phase, e, m))
        report = {
            **utility_report(result.model, data.train, data.test),
            "baseline_natural_accuracy": baseline_report["natural_accuracy"],
            "baseline_train_mean_true_class_prob": baseline_report["train_mean_true_class_prob"],
            "defense": spec.name,
            **result.report,
        }
        report["natural_accuracy_drop"] = report["baseline_natural_accuracy"] - report["natural_accuracy"]
        checkpoint = Path(args.out) / "model.pt"
        save_checkpoint(checkpoint, result.model, {"harden": params}, extra={"defense": spec.name})
        atomic_write_json(args.metrics, report)
        rows = [dict(row, phase=phase) for phase, hist in result.history.items() for row in hist]
        write_curve(args.plot, rows)
        run.log_metrics(report)
        run.log_artifact(args.metrics)
        run.log_artifact(checkpoint, "checkpoint")
    print(
        f"harden ({spec.name}): natural accuracy {report['natural_accuracy']:.4f} "
        f"(baseline {report['baseline_natural_accuracy']:.4f}), "
        f"train mean p_y {report['train_mean_true_class_prob']:.3f}"
    )


if __name__ == "__main__":
    main()
