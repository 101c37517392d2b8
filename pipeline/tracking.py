"""MLflow tracking for stages: one child run per executed stage under the pipeline's parent run.

The driver (``python -m pipeline.driver``) opens the parent run and hands its id to the stages in
``PARENT_RUN_ENV`` — our own variable, because MLFLOW_RUN_ID would make each stage *resume* the
parent instead of nesting under it. A stage run alone (plain ``dvc repro``) makes a top-level run.
DVC's files stay the source of truth: a skipped stage logs nothing.

A run records the process that opened it (``process.*`` tags); a stage killed with SIGKILL leaves
its run RUNNING forever, so the next driver run closes such runs as KILLED (``close_orphaned_runs``).

The experiment is tagged as model training (``mlflow.experimentKind``), not GenAI. The MLflow 3.17
UI itself opens every experiment in the view chosen by its sidebar switch (default "GenAI apps &
agents", kept in the browser); ``experiment_url`` gives the link that opens ours in "Model training".
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pipeline.config import Section
from pipeline.liveness import process_gone, process_identity

PARENT_RUN_ENV = "CALOR_PIPELINE_PARENT_RUN_ID"
DEFAULT_DB = "mlflow.db"
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"  # the UI's "Machine learning"; GenAI is "genai_development"
UI_VIEW_QUERY = "workflowType=machine_learning"  # the UI's URL switch to its "Model training" view


class MlflowSection(Section):
    """The ``mlflow`` params section: the experiment every stage logs into."""

    experiment: str = "calor-pipeline"


class TrackingUnavailableError(RuntimeError):
    """The configured MLflow store cannot be reached; nothing is silently logged elsewhere."""


def repo_root() -> Path:
    return Path(os.environ.get("DVC_ROOT") or Path.cwd())


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` if set, else a SQLite store ``mlflow.db`` at the repo root."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{repo_root() / DEFAULT_DB}"


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=repo_root(), timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def experiment_url(experiment_id: str, ui: str = "http://127.0.0.1:5000") -> str:
    """The experiment's page in ``mlflow ui``, opened in the model-training view."""
    return f"{ui.rstrip('/')}/#/experiments/{experiment_id}?{UI_VIEW_QUERY}"


def _ensure_experiment(name: str) -> str:
    """Create the experiment as a model-training one, or tag an existing one that is not."""
    import mlflow

    found = mlflow.get_experiment_by_name(name)
    if found is None:
        return mlflow.create_experiment(name, tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND})
    if found.tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:
        mlflow.MlflowClient().set_experiment_tag(found.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
    return found.experiment_id


def connect(experiment: str) -> str:
    """Point MLflow at the store, check it answers, and return the (model-training) experiment's id."""
    import mlflow
    from mlflow.exceptions import MlflowException

    uri = tracking_uri()
    if uri.startswith("http"):
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    mlflow.set_tracking_uri(uri)
    try:
        return _ensure_experiment(experiment)
    except (MlflowException, OSError) as err:
        raise TrackingUnavailableError(
            f"MLflow tracking store {uri!r} is unreachable ({type(err).__name__}: {err}); "
            "unset MLFLOW_TRACKING_URI to use the local SQLite store"
        ) from err


def close_orphaned_runs(experiment_id: str) -> list[str]:
    """Mark KILLED the experiment's runs left RUNNING by a process that is gone; return their ids.

    A run whose ``process.*`` tags show its process still running (or on another machine) is kept.
    Runs from before those tags are judged by their parent: a child cannot outlive the driver's run.
    """
    from mlflow import MlflowClient

    client = MlflowClient()
    running, token = [], None
    while True:
        page = client.search_runs([experiment_id], "attributes.status = 'RUNNING'", page_token=token)
        running += page
        token = page.token
        if not token:
            break
    tagged = [run for run in running if "process.pid" in run.data.tags]
    orphans = [run.info.run_id for run in tagged if process_gone(run.data.tags)]
    still_running = {run.info.run_id for run in running} - set(orphans)
    for run in running:
        parent = run.data.tags.get("mlflow.parentRunId")
        if "process.pid" not in run.data.tags and parent is not None and parent not in still_running:
            orphans.append(run.info.run_id)
    for run_id in orphans:
        client.set_tag(run_id, "pipeline.closed_as_killed", "its process was gone; closed by the next driver run")
        client.set_terminated(run_id, status="KILLED")
    return orphans


def flatten(params: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


class StageRun:
    """What a stage logs: per-epoch metrics, final metrics and files."""

    def __init__(self, run: Any) -> None:
        self.run = run
        self.run_id: str = run.info.run_id

    def log_epoch(self, prefix: str, epoch: int, metrics: dict[str, float]) -> None:
        import mlflow

        mlflow.log_metrics({f"{prefix}.{k}": v for k, v in metrics.items()}, step=epoch)

    def log_metrics(self, metrics: dict[str, Any], prefix: str = "") -> None:
        import mlflow

        numeric = {f"{prefix}{k}": float(v) for k, v in flatten(metrics).items() if isinstance(v, int | float)}
        mlflow.log_metrics(numeric)

    def set_tag(self, key: str, value: str) -> None:
        import mlflow

        mlflow.set_tag(key, value)

    def log_artifact(self, path: str | os.PathLike, artifact_path: str | None = None) -> None:
        import mlflow

        mlflow.log_artifact(str(path), artifact_path=artifact_path)

    def log_data(self, split_dir: str | os.PathLike, **contexts: str) -> None:
        """The split parts this stage reads, as dataset inputs: ``private_train="training"``, ...

        Each is logged by name, the manifest's sha256 (as digest), schema and counts, not its pixels.
        """
        from pipeline.tracking_data import log_split_inputs

        log_split_inputs(split_dir, contexts)


@contextmanager
def stage_run(stage: str, params: dict[str, Any], experiment: str) -> Iterator[StageRun]:
    """Open the stage's run (child of the driver's run when PARENT_RUN_ENV is set); rank 0's only under torchrun."""
    import mlflow

    from pipeline.distributed import is_primary

    if not is_primary():
        yield WorkerRun()
        return

    from pipeline.io import sha256_json

    experiment_id = connect(experiment)
    parent = os.environ.get(PARENT_RUN_ENV) or None
    tags = {
        **process_identity(),
        "pipeline.stage": stage,
        "dvc.stage": os.environ.get("DVC_STAGE", stage),
        "git.commit": git_commit(),
        "params.hash": sha256_json(params),
    }
    with mlflow.start_run(run_name=stage, experiment_id=experiment_id, parent_run_id=parent, tags=tags) as run:
        mlflow.log_params({k: str(v)[:500] for k, v in flatten(params).items()})
        yield StageRun(run)


class WorkerRun(StageRun):
    """The run a torchrun worker (rank > 0) logs to: nothing. One MLflow run per stage, rank 0's."""

    def __init__(self) -> None:
        self.run, self.run_id = None, ""

    def log_epoch(self, prefix: str, epoch: int, metrics: dict[str, float]) -> None:
        pass

    def log_metrics(self, metrics: dict[str, Any], prefix: str = "") -> None:
        pass

    def set_tag(self, key: str, value: str) -> None:
        pass

    def log_artifact(self, path: str | os.PathLike, artifact_path: str | None = None) -> None:
        pass

    def log_data(self, split_dir: str | os.PathLike, **contexts: str) -> None:
        pass
