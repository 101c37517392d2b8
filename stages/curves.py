"""Stage curves: reshape the training reports into the curves dvc.yaml's top-level ``plots`` draw.

Reads only reports other stages wrote (per-epoch rows of baseline, judge and hardening; the generic
and target-specific GANs' losses; CALoR's p*) and writes four small JSON files; no model is loaded.
"""

from __future__ import annotations

from pipeline.config import load_section
from pipeline.curves import classifier_curves, confidence_curve, prior_gan_curve, target_gan_curves
from pipeline.io import atomic_write_json
from pipeline.reports import read_report
from pipeline.stage_utils import stage_parser
from pipeline.tracking import MlflowSection, stage_run

INPUTS = ("baseline-curve", "judge-curve", "harden-curve", "harden-metrics", "prior-metrics")
OUTPUTS = ("classifiers", "confidence", "prior-gan", "target-gans")


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, *INPUTS, *OUTPUTS)
    parser.add_argument("--target-gan", action="append", required=True, help="a target_gan report; repeat per model")
    args = parser.parse_args(argv)
    experiment = load_section("mlflow", args.params, MlflowSection).experiment
    harden_curve = read_report(args.harden_curve, expect=list)
    runs = {"baseline": read_report(args.baseline_curve, list), "judge": read_report(args.judge_curve, list)}
    try:
        curves = {
            args.classifiers: classifier_curves({**runs, "hardened": harden_curve}),
            args.confidence: confidence_curve(harden_curve, read_report(args.harden_metrics)),
            args.prior_gan: prior_gan_curve(read_report(args.prior_metrics)),
            args.target_gans: target_gan_curves([read_report(path) for path in args.target_gan]),
        }
    except KeyError as err:
        raise SystemExit(f"curves: a report lacks the field {err}; re-run the stage that writes it") from None
    except ValueError as err:
        raise SystemExit(f"curves: {err}") from None
    with stage_run("curves", {}, experiment) as run:
        for path, rows in curves.items():
            atomic_write_json(path, rows)
            run.log_artifact(path, artifact_path="curves")
    print("curves: " + ", ".join(f"{path} ({len(rows)} rows)" for path, rows in curves.items()))


if __name__ == "__main__":
    main()
