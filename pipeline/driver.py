"""``python -m pipeline.driver [dvc repro args]``: run ``dvc repro`` under one MLflow parent run.

Used by ``make repro``. Each stage that actually executes opens a child run (pipeline.tracking);
stages DVC skips log nothing, so the parent run shows exactly what this invocation computed.
"""

from __future__ import annotations

import os
import subprocess
import sys

from pipeline.config import MlflowSection, load_section
from pipeline.tracking import PARENT_RUN_ENV, connect, git_commit


def main(argv: list[str] | None = None) -> int:
    import mlflow

    args = sys.argv[1:] if argv is None else argv
    experiment = load_section("mlflow", schema=MlflowSection).experiment
    experiment_id = connect(experiment)  # creates the SQLite schema once, before stages race on it
    with mlflow.start_run(run_name="pipeline", experiment_id=experiment_id, tags={"git.commit": git_commit()}) as run:
        env = {**os.environ, PARENT_RUN_ENV: run.info.run_id, "DVC_NO_ANALYTICS": "1"}
        code = subprocess.call(["dvc", "repro", *args], env=env)
        mlflow.set_tag("dvc.exit_code", str(code))
        if code != 0:
            mlflow.end_run(status="FAILED")
    return code


if __name__ == "__main__":
    sys.exit(main())
