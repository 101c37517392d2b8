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


@pytest.fixture(scope="module")
def store_uri(tmp_path_factory):
    """One SQLite store for the tests below (creating its schema costs seconds on a busy machine)."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


def test_experiment_opens_as_model_training_new_or_existing(store_uri, monkeypatch):
    import mlflow

    from pipeline.tracking import EXPERIMENT_KIND, EXPERIMENT_KIND_TAG, experiment_url

    monkeypatch.setenv("MLFLOW_TRACKING_URI", store_uri)
    new = connect("fresh")
    assert mlflow.get_experiment(new).tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND == "custom_model_development"
    old = mlflow.create_experiment("made-before-the-tag", tags={EXPERIMENT_KIND_TAG: "genai_development"})
    assert connect("made-before-the-tag") == old
    assert mlflow.get_experiment(old).tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND
    assert experiment_url(old) == f"http://127.0.0.1:5000/#/experiments/{old}?workflowType=machine_learning"


def _split_dir(tmp_path):
    from pipeline.data import SplitSection, make_mi_split, save_split
    from tests.fixtures_data import fake_labelled_images, write_fake_fashion_mnist

    sources = write_fake_fashion_mnist(tmp_path / "raw")
    train, test = fake_labelled_images(6, 4, (1, 8, 8)), fake_labelled_images(3, 4, (1, 8, 8), seed=1)
    cfg = SplitSection(mode="class_disjoint", private_classes=[0, 1], private_train_per_class=2,
                       private_test_per_class=1, public_per_class=2)  # fmt: skip
    save_split(make_mi_split(*train, *test, cfg), tmp_path / "prepared", sources)
    return tmp_path / "prepared"


def test_stage_logs_the_parts_it_reads_as_hashed_dataset_inputs(tmp_path, store_uri, monkeypatch):
    import json

    import mlflow

    from pipeline.data import load_split_manifest

    monkeypatch.setenv("MLFLOW_TRACKING_URI", store_uri)
    monkeypatch.chdir(tmp_path)  # the default artifact root (./mlruns) lands here, not in the repo
    split = _split_dir(tmp_path)
    manifest = load_split_manifest(split)
    with stage_run("attack@baseline", {}, "exp") as run:
        run.log_data(split, private_train="evaluation", private_test="evaluation", public="attack")
    inputs = {i.dataset.name: i for i in mlflow.get_run(run.run_id).inputs.dataset_inputs}
    assert set(inputs) == {"private_train", "private_test", "public"}
    for name, found in inputs.items():
        entry = manifest["parts"][name]
        assert found.dataset.digest == entry["sha256"][:16]
        context = {t.key: t.value for t in found.tags}["mlflow.data.context"]
        assert context == ("attack" if name == "public" else "evaluation")
        profile = json.loads(found.dataset.profile)
        assert profile["num_rows"] == entry["count"] and profile["sha256"] == entry["sha256"]
        assert json.loads(found.dataset.schema)["mlflow_tensorspec"]["features"]  # schema, never the pixels
        assert found.dataset.source_type == "local" and json.loads(found.dataset.source)["uri"].endswith(f"{name}.npz")

    with stage_run("prepare", {}, "exp") as prepare:
        prepare.log_data(split, sources="source")
    raw = mlflow.get_run(prepare.run_id).inputs.dataset_inputs
    assert {i.dataset.name: i.dataset.digest for i in raw} == {
        key: info["sha256"][:16] for key, info in manifest["sources"].items()
    }
    with pytest.raises(ValueError, match="unknown split parts"), stage_run("typo", {}, "exp") as bad:
        bad.log_data(split, private_tarin="training")


def test_driver_logs_every_split_part_on_the_pipeline_run():
    from pipeline.data import PART_NAMES
    from pipeline.driver import PIPELINE_DATA

    assert set(PIPELINE_DATA) == set(PART_NAMES)
