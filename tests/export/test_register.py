"""MLflow registry: candidate always moves, champion only on an approved gate and no regression."""

import json
import os

import pytest

from pipeline.export import GateRefusal
from pipeline.registry_mlflow import compare_to_champion, register_release
from pipeline.registry_mlflow.config import RegisterSection
from stages.register import main as register_main
from tests.export.release_fixtures import write_checkpoint, write_gate, write_params

NAME = "tiny-classifier"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One SQLite store for the module (creating its schema costs seconds); artifacts under tmp."""
    from mlflow import MlflowClient

    root = tmp_path_factory.mktemp("mlflow")
    saved = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{root / 'mlflow.db'}"
    cwd = os.getcwd()
    os.chdir(root)  # the default artifact root (./mlruns) lands here, not in the repo
    try:
        yield root, MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    finally:
        os.chdir(cwd)
        if saved is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = saved


def _register(release, store, gate, tag, **cfg):
    root, _ = store
    return register_release(
        RegisterSection(model_name=NAME, **cfg), experiment="tests", checkpoint=release.checkpoint, gate=gate,
        onnx_path=release.onnx, report=root / f"register-{tag}.json", extra_artifacts=(release.report,),
        dvc_lock=root / "dvc.lock",
    )  # fmt: skip


def _aliases(client):
    return {alias: str(v) for alias, v in client.get_registered_model(NAME).aliases.items()}


def test_aliases_over_a_sequence_of_releases(release, store, tmp_path):
    root, client = store
    (root / "dvc.lock").write_text("schema: '2.0'\n")

    first = _register(release, store, release.gate, "1")
    assert first["champion_moved"] and _aliases(client) == {"candidate": "1", "champion": "1"}
    tags = client.get_model_version(NAME, "1").tags
    assert tags["gate_verdict"] == "approved" and float(tags["natural_accuracy"]) == 0.85
    assert float(tags["worst_case_acc1"]) == 0.1 and len(tags["dvc_lock_sha256"]) == 64
    assert tags["checkpoint_sha256"] == json.loads(release.gate.read_text())["checkpoint_sha256"]
    assert {"git_commit", "gate_report_sha256", "onnx_sha256", "defense"} <= set(tags)
    assert json.loads((root / "register-1.json").read_text()) == first

    # Worse natural accuracy: a new candidate, but the champion stays.
    worse = write_gate(tmp_path / "gate-worse.json", release.checkpoint, natural_accuracy=0.80)
    second = _register(release, store, worse, "2")
    assert not second["champion_moved"] and _aliases(client) == {"candidate": "2", "champion": "1"}
    assert "natural_accuracy 0.8000 < champion 0.8500" in second["comparison"]["reasons"][0]

    # The attack does better on it (worst-case Acc@1 up): refused as well.
    leakier = write_gate(tmp_path / "gate-leaky.json", release.checkpoint, worst_case_acc1=0.2)
    third = _register(release, store, leakier, "3")
    assert not third["champion_moved"] and "attack does better" in third["comparison"]["reasons"][0]
    assert _aliases(client) == {"candidate": "3", "champion": "1"}

    # Within a tolerance the params allow, and on both metrics no worse: champion moves.
    fourth = _register(release, store, worse, "4", natural_accuracy_tolerance=0.1)
    assert fourth["champion_moved"] and _aliases(client) == {"candidate": "4", "champion": "4"}
    assert fourth["previous_champion_version"] == "1"


def test_registered_champion_can_be_served_from_the_registry(release, store):
    from pipeline.serve.source import resolve_source

    if "champion" not in _aliases(store[1]):
        _register(release, store, release.gate, "serve")
    source = resolve_source(f"models:/{NAME}@champion")
    assert source.onnx_path.read_bytes() == release.onnx.read_bytes()
    assert source.checkpoint_path.read_bytes() == release.checkpoint.read_bytes()
    assert source.input.dims == (1, 12, 12) and source.output.dims == (4,)
    assert source.gated and source.describe()["registry_uri"] == f"models:/{NAME}@champion"
    download = source.workdir
    source.close()  # the server does this on shutdown: no folder left per start
    assert download is not None and not download.exists()


def test_tampered_checkpoint_is_not_registered(release, store, tmp_path):
    _, client = store
    before = len(client.search_model_versions(f"name='{NAME}'"))
    other = write_checkpoint(tmp_path / "model.pt", seed=3)
    with pytest.raises(GateRefusal, match="changed after it was judged"):
        register_release(RegisterSection(model_name=NAME), experiment="tests", checkpoint=other, gate=release.gate,
                         onnx_path=release.onnx, report=tmp_path / "r.json")  # fmt: skip
    # Approved for this checkpoint, but the ONNX file is another model's export.
    gate = write_gate(tmp_path / "gate.json", other)
    with pytest.raises(GateRefusal, match="re-run the export stage"):
        register_release(RegisterSection(model_name=NAME), experiment="tests", checkpoint=other, gate=gate,
                         onnx_path=release.onnx, report=tmp_path / "r.json")  # fmt: skip
    assert len(client.search_model_versions(f"name='{NAME}'")) == before and not (tmp_path / "r.json").exists()


def test_stage_refuses_a_rejected_gate(release, store, tmp_path, capsys):
    gate = write_gate(tmp_path / "gate.json", release.checkpoint, verdict="rejected")
    params = write_params(tmp_path / "params.yaml", register={"model_name": NAME}, mlflow={"experiment": "tests"})
    argv = [
        "--params",
        str(params),
        "--checkpoint",
        str(release.checkpoint),
        "--gate",
        str(gate),
        "--onnx",
        str(release.onnx),
        "--export-report",
        str(release.report),
        "--model-card",
        str(tmp_path / "model_card.md"),
        "--report",
        str(tmp_path / "r.json"),
    ]
    assert register_main(argv) == 1
    assert "verdict is 'rejected'" in capsys.readouterr().err


def test_version_carries_signature_example_gate_report_card_and_pipeline_run(release, store, tmp_path, monkeypatch):
    import mlflow

    from pipeline.tracking import PARENT_RUN_ENV, connect

    root, client = store
    card = tmp_path / "model_card.md"
    card.write_text("# Model card\n\nTiny classifier.\n")
    with mlflow.start_run(run_name="pipeline", experiment_id=connect("tests")) as pipeline_run:
        parent = pipeline_run.info.run_id
    monkeypatch.setenv(PARENT_RUN_ENV, parent)
    result = register_release(
        RegisterSection(model_name=NAME), experiment="tests", checkpoint=release.checkpoint, gate=release.gate,
        onnx_path=release.onnx, report=tmp_path / "r.json", model_card=card, dvc_lock=root / "dvc.lock",
    )  # fmt: skip
    version = client.get_model_version(NAME, result["version"])

    info = mlflow.models.get_model_info(f"models:/{NAME}/{version.version}")
    assert tuple(info.signature.inputs.to_dict()[0]["tensor-spec"]["shape"]) == (-1, 1, 12, 12)
    assert info.saved_input_example_info is not None
    local = mlflow.artifacts.download_artifacts(f"models:/{NAME}/{version.version}", dst_path=str(tmp_path / "dl"))
    extra = os.path.join(local, "extra_files")
    assert sorted(os.listdir(extra)) == ["gate.json", "model.pt", "model_card.md"]
    assert open(os.path.join(extra, "gate.json"), "rb").read() == release.gate.read_bytes()
    assert open(os.path.join(extra, "model_card.md")).read() == card.read_text()
    assert os.path.isfile(os.path.join(local, "input_example.json"))

    # The link back: the version's source run is the register stage, a child of the pipeline run.
    assert version.run_id == result["run_id"]
    assert mlflow.get_run(version.run_id).data.tags["mlflow.parentRunId"] == parent
    assert version.tags["pipeline_run_id"] == parent and parent in version.description
    assert {"gate.json", "model_card.md"} <= {
        os.path.basename(a.path) for a in client.list_artifacts(version.run_id, "reports")
    }


def test_missing_model_card_is_refused(release, store, tmp_path):
    with pytest.raises(GateRefusal, match="model card not found"):
        register_release(RegisterSection(model_name=NAME), experiment="tests", checkpoint=release.checkpoint,
                         gate=release.gate, onnx_path=release.onnx, report=tmp_path / "r.json",
                         model_card=tmp_path / "gone.md")  # fmt: skip


@pytest.mark.parametrize(
    ("candidate", "champion", "verdict", "promote"),
    [
        ({"natural_accuracy": 0.9, "worst_case_acc1": 0.1}, None, "approved", True),
        ({"natural_accuracy": 0.9, "worst_case_acc1": 0.1}, None, "rejected", False),
        ({"natural_accuracy": 0.9, "worst_case_acc1": 0.1}, {"natural_accuracy": 0.9, "worst_case_acc1": 0.1},
         "approved", True),
        ({"natural_accuracy": None, "worst_case_acc1": 0.1}, None, "approved", False),
        ({"natural_accuracy": 0.9, "worst_case_acc1": 0.1}, {"natural_accuracy": None, "worst_case_acc1": 0.1},
         "approved", False),
    ],
)  # fmt: skip
def test_compare_to_champion(candidate, champion, verdict, promote):
    assert compare_to_champion(candidate, champion, gate_verdict=verdict)["promote"] is promote
