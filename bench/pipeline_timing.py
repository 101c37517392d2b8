"""Per-stage wall time of the default pipeline, from the MLflow runs of one `pipeline.driver` call.

    python bench/pipeline_timing.py --run     # the driver with `dvc repro --force`, then report
    python bench/pipeline_timing.py           # report the latest pipeline run already tracked

Writes reports/bench/pipeline.json: each executed stage's seconds (child run start → end), the
parent run's total, and the machine. Budgets (issue #2: foundation stages ≤ 8 min; issue #3: prior +
attack suite ≤ 10 min; whole default repro ≤ 20 min) are checked here, never in a timed test.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.config import MlflowSection, load_section  # noqa: E402
from pipeline.io import atomic_write_json  # noqa: E402
from pipeline.tracking import connect  # noqa: E402

BUDGETS_S = {
    "foundation (prepare, train_baseline, train_judge, harden)": (
        ["prepare", "train_baseline", "train_judge", "harden"], 8 * 60),
    "prior + attack suite on both models": (["train_prior", "attack@baseline", "attack@hardened"], 10 * 60),
}  # fmt: skip


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", action="store_true", help="force a full `dvc repro` first")
    parser.add_argument("--out", type=Path, default=Path("reports/bench/pipeline.json"))
    args = parser.parse_args()
    if args.run:
        code = subprocess.call([sys.executable, "-m", "pipeline.driver", "--force"], env=os.environ)
        if code != 0:
            raise SystemExit(f"dvc repro failed with exit code {code}")
    parent, children = latest_pipeline(load_section("mlflow", schema=MlflowSection).experiment)
    stages = {c.info.run_name: (c.info.end_time - c.info.start_time) / 1000 for c in children if c.info.end_time}
    budgets = {}
    for label, (names, limit) in BUDGETS_S.items():
        ran = [n for n in names if n in stages]
        total = sum(stages[n] for n in ran)
        budgets[label] = {"stages": ran, "seconds": round(total, 1), "budget_s": limit, "within": total <= limit,
                          "complete": len(ran) == len(names)}  # fmt: skip
    report = {
        "parent_run_id": parent.info.run_id,
        "total_seconds": round((parent.info.end_time - parent.info.start_time) / 1000, 1)
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
