"""MLflow tracking: child runs nest under the driver's parent; a dead server is a clear error."""

import pytest

from pipeline.tracking import PARENT_RUN_ENV, TrackingUnavailableError, connect, flatten, stage_run


def test_stage_run_nests_under_parent_from_our_env_var(tmp_path, monkeypatch):
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment_id = connect("exp")
    with mlflow.start_run(run_name="pipeline", experiment_id=experiment_id) as parent:
        parent_id = parent.info.run_id
    monkeypatch.setenv(PARENT_RUN_ENV, parent_id)
    with stage_run("train_judge", {"train": {"lr": 0.1}}, "exp") as run:
        run.log_epoch("judge", 1, {"loss": 0.5})
        run.log_metrics({"natural_accuracy": 0.9, "per_class": [0.1], "nested": {"x": 2}})
    child = mlflow.get_run(run.run_id)
    assert child.data.tags["mlflow.parentRunId"] == parent_id
    assert child.data.tags["pipeline.stage"] == "train_judge"
    assert child.data.params["train.lr"] == "0.1"
    assert child.data.metrics == {"judge.loss": 0.5, "natural_accuracy": 0.9, "nested.x": 2.0}
    monkeypatch.delenv(PARENT_RUN_ENV)
    with stage_run("alone", {}, "exp") as alone:
        pass
    assert "mlflow.parentRunId" not in mlflow.get_run(alone.run_id).data.tags


def test_unreachable_tracking_server_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")
    with pytest.raises(TrackingUnavailableError, match="127.0.0.1:9"):
        connect("exp")


def test_flatten_dots_nested_keys():
    assert flatten({"a": {"b": 1, "c": {"d": 2}}, "e": 3}) == {"a.b": 1, "a.c.d": 2, "e": 3}
