"""Per-stage wall time of the default pipeline, from the MLflow runs of one `pipeline.driver` call.

    python bench/pipeline_timing.py --run     # the driver with `dvc repro --force`, then report
    python bench/pipeline_timing.py           # report the latest pipeline run already tracked
    python bench/pipeline_timing.py --latest-per-stage   # each stage's latest run, whichever driver call ran it

Writes reports/bench/pipeline.json: each executed stage's seconds (child run start → end), the
parent run's total, and the machine. The budget (issue #10: the whole default `make repro` ≤ 25 min
after install) is checked here, never in a timed test.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.config import DEFAULT_PARAMS, load_section  # noqa: E402
from pipeline.io import atomic_write_json  # noqa: E402
from pipeline.tracking import MlflowSection, connect  # noqa: E402

MODELS = ("baseline", "hardened", "floor")
DEFAULT_STAGES = [
    "prepare", "train_baseline", "train_judge", "harden", "floor", "train_prior",
    *(f"target_gan@{m}" for m in MODELS), *(f"attack@{m}" for m in MODELS), "gate", "model_card",
]  # fmt: skip
BUDGETS_S = {"whole default pipeline": (DEFAULT_STAGES, 25 * 60)}


def latest_pipeline(experiment: str) -> tuple[object, list[object]]:
    import mlflow

    experiment_id = connect(experiment)
    parents = mlflow.search_runs(
        [experiment_id], filter_string="tags.`mlflow.runName` = 'pipeline'", order_by=["start_time DESC"],
        max_results=1, output_format="list",
    )  # fmt: skip
    if not parents:
        raise SystemExit("no pipeline run tracked yet: run with --run (or `make repro`) first")
    parent = parents[0]
    children = mlflow.search_runs(
        [experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'", output_format="list"
    )
    return parent, sorted(children, key=lambda r: r.info.start_time)


def latest_stage_runs(experiment: str) -> list[object]:
    """The latest finished run of every default stage (a pipeline run in pieces still gets a full table)."""
    import mlflow

    experiment_id = connect(experiment)
    runs = mlflow.search_runs([experiment_id], filter_string="attributes.status = 'FINISHED'",
                              order_by=["start_time DESC"], output_format="list")  # fmt: skip
    latest: dict[str, object] = {}
    for run in runs:
        if run.info.run_name in DEFAULT_STAGES:
            latest.setdefault(run.info.run_name, run)
    return sorted(latest.values(), key=lambda r: r.info.start_time)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", action="store_true", help="force a full `dvc repro` first")
    parser.add_argument("--out", type=Path, default=Path("reports/bench/pipeline.json"))
    parser.add_argument(
        "--latest-per-stage",
        action="store_true",
        help="each stage's latest finished run, whichever driver call (or plain dvc repro) ran it",
    )
    args = parser.parse_args()
    if args.run:
        code = subprocess.call([sys.executable, "-m", "pipeline.driver", "--force"], env=os.environ)
        if code != 0:
            raise SystemExit(f"dvc repro failed with exit code {code}")
    experiment = load_section("mlflow", DEFAULT_PARAMS, MlflowSection).experiment
    parent, children = latest_pipeline(experiment)
    if args.latest_per_stage:
        children = latest_stage_runs(experiment)
    stages = {c.info.run_name: (c.info.end_time - c.info.start_time) / 1000 for c in children if c.info.end_time}
    budgets = {}
    for label, (names, limit) in BUDGETS_S.items():
        ran = [n for n in names if n in stages]
        total = sum(stages[n] for n in ran)
        budgets[label] = {"stages": ran, "seconds": round(total, 1), "budget_s": limit, "within": total <= limit,
                          "complete": len(ran) == len(names)}  # fmt: skip
    report = {
        "parent_run_id": None if args.latest_per_stage else parent.info.run_id,
        "latest_per_stage": args.latest_per_stage,
        "total_seconds": round(sum(stages.values()), 1)
        if args.latest_per_stage
        else round((parent.info.end_time - parent.info.start_time) / 1000, 1)
        if parent.info.end_time
        else None,
        "stages_seconds": {k: round(v, 1) for k, v in stages.items()},
        "budgets": budgets,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
    }
    atomic_write_json(args.out, report)
    for name, seconds in report["stages_seconds"].items():
        print(f"{name:20s} {seconds:8.1f} s")
    print(f"{'total (parent run)':20s} {report['total_seconds']} s")
    for label, row in budgets.items():
        print(f"{label}: {row['seconds']} s of {row['budget_s']} s -> {'ok' if row['within'] else 'OVER'}")


if __name__ == "__main__":
    main()
