"""The release half end to end: an approving gate on its evidence → export → MLflow champion → served.

The smoke_release profile (on learnable synthetic data) hardens with a model that learns nothing, so
the gate approves on the attacks' evidence rather than on edited reports; then `make repro`'s driver
runs release/dvc.yaml, the champion alias is set, and the server started from
``models:/<name>@champion`` answers tritonclient requests with the checkpoint's top-1.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from pipeline.checkpoint import load_checkpoint
from pipeline.serve.process import server_process
from tests.e2e.smoke_repo import build_smoke_repo, run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def released(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    work, env = build_smoke_repo(tmp_path_factory.mktemp("release"), ["smoke", "smoke_release"], learnable=True)
    run([sys.executable, "-m", "pipeline.driver"], work, env)
    return work, env


def test_the_gate_approves_on_its_evidence(released):
    work, _ = released
    gate = json.loads((work / "reports/gate.json").read_text())
    assert gate["verdict"] == "approved", gate["verdict_reason"]
    assert gate["failed_checks"] == [] and all(c["status"] == "pass" for c in gate["checks"])
    baseline_leaks = next(c for c in gate["checks"] if c["name"] == "baseline_leaks")
    assert baseline_leaks["bound"] > 0  # the suite did show the undefended baseline leaking


def test_release_pipeline_ran_and_registered_a_champion(released):
    work, env = released
    lock = yaml.safe_load((work / "release/dvc.lock").read_text())
    assert {"export", "register"} <= set(lock["stages"])
    register = json.loads((work / "reports/register.json").read_text())
    assert register["champion_moved"] is True
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{work / 'mlflow.db'}")
    name = yaml.safe_load((work / "params.yaml").read_text())["register"]["model_name"]
    version = mlflow.MlflowClient().get_model_version_by_alias(name, "champion")
    assert str(version.version) == str(register["version"])  # MLflow 3 gives an int here
    run(["dvc", "status", "release/dvc.yaml", "-q"], work, env)  # exit 0: the release is up to date


@pytest.fixture(scope="module")
def champion_server(released):
    work, env = released
    name = yaml.safe_load((work / "params.yaml").read_text())["register"]["model_name"]
    args = ["--model", f"models:/{name}@champion", "--params", "params.yaml"]
    with server_process(args, work / "serve.log", work, env=env, timeout_s=120) as server:
        yield server.port


def test_the_served_champion_classifies_private_images_like_the_checkpoint(released, champion_server):
    import tritonclient.http as httpclient

    from pipeline.data import load_labelled

    work, _ = released
    images = load_labelled(work / "data/prepared", "private_test").images[:32].numpy().astype(np.float32)
    client = httpclient.InferenceServerClient(f"127.0.0.1:{champion_server}")
    model_name = yaml.safe_load((work / "params.yaml").read_text())["serve"]["model_name"]
    assert client.is_model_ready(model_name)
    tensor = httpclient.InferInput("input", list(images.shape), "FP32")
    tensor.set_data_from_numpy(images)
    logits = client.infer(model_name, [tensor]).as_numpy("logits")
    model, _ = load_checkpoint(work / "models/harden/model.pt")
    with torch.inference_mode():
        expected = model(torch.from_numpy(images)).argmax(1).numpy()
    np.testing.assert_array_equal(logits.argmax(1), expected)
