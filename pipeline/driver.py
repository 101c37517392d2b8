"""``python -m pipeline.driver [--profile NAME ...] [dvc args]``: the main pipeline, then the release if approved.

Used by ``make repro``. Under one MLflow parent run it runs ``dvc repro`` (prepare → … → gate) and,
only when reports/gate.json approves the hardened checkpoint, the release pipeline
(``release/dvc.yaml``: export → register). A rejected or inconclusive verdict is the pipeline's
answer, not a crash: the run ends successfully with the release blocked and says why. Each stage
that executes opens a child run (pipeline.tracking); stages DVC skips log nothing.

With ``--profile`` the main pipeline runs as ``dvc exp run --name <profiles>-<time> -S ...`` instead
(pipeline.profiles): the profile is applied to the committed params.yaml in the workspace, and the
experiment is listed by ``dvc exp show`` next to the others.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from pipeline.config import DEFAULT_PARAMS, load_section
from pipeline.liveness import process_identity
from pipeline.reports import read_report
from pipeline.tracking import (
    PARENT_RUN_ENV,
    MlflowSection,
    close_orphaned_runs,
    connect,
    experiment_url,
    git_commit,
    tracking_uri,
)  # fmt: skip
from pipeline.tracking_data import log_split_inputs

GATE_REPORT = Path("reports/gate.json")
PREPARED = Path("data/prepared")  # the prepare stage's output (dvc.yaml)
# What the whole pipeline does with each split part: the parent run's Dataset column (its children,
# folded under it in the runs table, log the parts each stage reads).
PIPELINE_DATA = {"private_train": "training", "private_test": "evaluation", "public": "attack",
                 "judge_train": "training", "judge_test": "evaluation"}  # fmt: skip
RELEASE_PIPELINE = "release/dvc.yaml"
SERVE_COMMAND = "make serve"  # models:/<register.model_name>@champion from this MLflow store (Makefile)


def gate_verdict(path: Path = GATE_REPORT) -> tuple[str, list[str]]:
    report = read_report(path)
    return report["verdict"], report.get("failed_checks", [])


def main_command(profiles: list[str], name: str | None, dvc_args: list[str]) -> list[str]:
    """``dvc repro``, or for profiles the experiment that applies them (refused over an edited params.yaml)."""
    if not profiles:
        if name:
            raise SystemExit("--name names the experiment of a --profile run; there is none without --profile")
        return ["dvc", "repro", *dvc_args]
    from pipeline.profiles import experiment_name, set_param_args

    edited = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", "params.yaml"], capture_output=True, text=True)
    if edited.returncode != 0:
        raise SystemExit(
            "params.yaml differs from HEAD (an edit or a previous profile run) or git cannot tell "
            f"({edited.stderr.strip() or 'uncommitted changes'}); a profile applies to the committed defaults: "
            "commit params.yaml or `git checkout params.yaml` first"
        )
    try:
        overrides = set_param_args(profiles)
    except ValueError as err:
        raise SystemExit(str(err)) from None
    return ["dvc", "exp", "run", "--name", name or experiment_name(profiles), *overrides, *dvc_args]


def main(argv: list[str] | None = None) -> int:
    import mlflow

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False
    )
    parser.add_argument("--profile", action="append", default=[], help="profiles/NAME.yaml (repeat to merge)")
    parser.add_argument("--name", help="the experiment's name with --profile (default: the profiles and the time)")
    known, args = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    command = main_command(known.profile, known.name, args)
    experiment = load_section("mlflow", DEFAULT_PARAMS, MlflowSection).experiment
    experiment_id = connect(experiment)  # creates the SQLite schema once, before stages race on it
    closed = close_orphaned_runs(experiment_id)
    if closed:
        print(f"MLflow: closed {len(closed)} run(s) left RUNNING by killed processes as KILLED: {', '.join(closed)}")
    tags = {"git.commit": git_commit(), **process_identity(),
            **({"profiles": " ".join(known.profile)} if known.profile else {})}  # fmt: skip
    with mlflow.start_run(run_name="pipeline", experiment_id=experiment_id, tags=tags) as run:
        env = {**os.environ, PARENT_RUN_ENV: run.info.run_id, "DVC_NO_ANALYTICS": "1"}
        uri = tracking_uri()
        ui = f"{experiment_url(experiment_id, uri)}" if uri.startswith("http") else (
            f"mlflow ui --backend-store-uri {uri}, then {experiment_url(experiment_id)}")  # fmt: skip
        print(f"MLflow: {ui}")
        code = subprocess.call(command, env=env)
        mlflow.set_tag("dvc.exit_code", str(code))
        if code != 0:
            mlflow.end_run(status="FAILED")
            return code
        log_split_inputs(PREPARED, PIPELINE_DATA)
        verdict, failed = gate_verdict()
        mlflow.set_tag("gate.verdict", verdict)
        if verdict != "approved":
            mlflow.set_tag("release", "blocked")
            print(f"\nRelease blocked: the gate says {verdict!r} (failed checks: {', '.join(failed) or 'none'}).")
            print(f"Evidence: {GATE_REPORT}, reports/attack/*.json and the grids in reports/attack/grids/.")
            return 0
        code = subprocess.call(["dvc", "repro", RELEASE_PIPELINE, *args], env=env)
        mlflow.set_tag("release", "done" if code == 0 else "failed")
        if code != 0:
            mlflow.end_run(status="FAILED")
            return code
    print(f"\nReleased. Serve the champion with: {SERVE_COMMAND}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
