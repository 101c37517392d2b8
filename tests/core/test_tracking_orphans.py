"""Runs a killed process left RUNNING are closed as KILLED by the next driver run, and only those."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.config import load_section
from pipeline.liveness import process_gone, process_identity
from pipeline.tracking import MlflowSection, close_orphaned_runs, connect, stage_run

REPO = Path(__file__).resolve().parents[2]

KILLED_STAGE = """
import os, signal, sys
from pipeline.tracking import stage_run
with stage_run("harden", {"harden": {"defense": "calor"}}, sys.argv[1]) as run:
    print(run.run_id, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.fixture(scope="module")
def store_uri(tmp_path_factory):
    """One SQLite store for the module (creating its schema costs seconds on a busy machine)."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture
def store(store_uri, request, monkeypatch):
    """A fresh experiment per test, so one test's runs are not another's orphans."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store_uri)
    monkeypatch.delenv("CALOR_PIPELINE_PARENT_RUN_ID", raising=False)
    return connect(request.node.name)


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def open_run(experiment_id: str, tags: dict[str, str], parent: str | None = None) -> str:
    from mlflow import MlflowClient

    if parent:
        tags = {**tags, "mlflow.parentRunId": parent}
    return MlflowClient().create_run(experiment_id, tags=tags).info.run_id


def status(run_id: str) -> str:
    from mlflow import MlflowClient

    return MlflowClient().get_run(run_id).info.status


def test_a_stage_run_records_the_process_that_opened_it(store, request):
    import mlflow

    with stage_run("gate", {}, request.node.name) as run:
        pass
    tags = mlflow.get_run(run.run_id).data.tags
    assert tags["process.pid"] == str(os.getpid())
    assert {k: tags[k] for k in process_identity()} == process_identity()


def test_a_sigkilled_stage_leaves_its_run_running_and_the_driver_closes_it_as_killed(store, tmp_path, request):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-c", KILLED_STAGE, request.node.name]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == -9, result.stderr
    run_id = result.stdout.split()[0]
    assert status(run_id) == "RUNNING"
    assert close_orphaned_runs(store) == [run_id]
    assert status(run_id) == "KILLED"
    assert close_orphaned_runs(store) == []  # nothing left to close


def test_only_runs_whose_process_is_gone_are_closed(store):
    me = process_identity()
    dead = open_run(store, {**me, "process.pid": str(dead_pid())})
    rebooted = open_run(store, {**me, "process.boot_id": "an-earlier-boot", "process.pid": str(os.getpid())})
    alive = open_run(store, me)  # e.g. a compare stage still at work while the driver starts
    elsewhere = open_run(store, {**me, "process.host": "another-machine", "process.pid": str(dead_pid())})
    # Runs from before the process tags: a child whose parent run ended cannot still be running.
    ended_parent = open_run(store, {})
    from mlflow import MlflowClient

    MlflowClient().set_terminated(ended_parent, status="FAILED")
    legacy_orphan = open_run(store, {}, parent=ended_parent)
    running_parent = open_run(store, me)
    legacy_child = open_run(store, {}, parent=running_parent)
    legacy_top_level = open_run(store, {})

    assert sorted(close_orphaned_runs(store)) == sorted([dead, rebooted, legacy_orphan])
    assert [status(r) for r in (dead, rebooted, legacy_orphan)] == ["KILLED"] * 3
    kept = (alive, elsewhere, running_parent, legacy_child, legacy_top_level)
    assert [status(r) for r in kept] == ["RUNNING"] * 5


def test_a_legacy_child_of_a_killed_driver_is_closed_with_it(store):
    driver = open_run(store, {**process_identity(), "process.pid": str(dead_pid())})
    child = open_run(store, {}, parent=driver)
    assert sorted(close_orphaned_runs(store)) == sorted([driver, child])


def test_process_gone_is_only_sure_on_this_machine():
    me = process_identity()
    assert process_gone(me) is False
    assert process_gone({**me, "process.pid": str(dead_pid())}) is True
    assert process_gone({**me, "process.host": "another-machine"}) is None
    assert process_gone({**me, "process.pid": "not-a-pid"}) is None
    assert process_gone({}) is None


def test_the_driver_closes_orphans_before_it_opens_its_own_run(store, monkeypatch):
    import mlflow

    from pipeline import driver

    experiment = load_section("mlflow", REPO / "params.yaml", MlflowSection).experiment
    orphan = open_run(connect(experiment), {**process_identity(), "process.pid": str(dead_pid())})
    monkeypatch.chdir(REPO)  # reads the mlflow section of params.yaml, nothing else
    monkeypatch.setattr(driver.subprocess, "call", lambda *args, **kwargs: 7)  # `dvc repro` fails at once
    assert driver.main([]) == 7
    assert status(orphan) == "KILLED"
    (pipeline_run,) = mlflow.search_runs(
        experiment_names=[experiment], filter_string="attributes.run_name = 'pipeline'", output_format="list"
    )
    assert pipeline_run.info.status == "FAILED"
    assert pipeline_run.data.tags["process.pid"] == str(os.getpid())
