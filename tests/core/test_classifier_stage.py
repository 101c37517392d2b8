"""The train_baseline / train_judge stage body on a tiny split: outputs, and the class_disjoint judge."""

import json

import pytest
import yaml

from pipeline.checkpoint import load_checkpoint
from pipeline.classifier_training import run_classifier_stage
from pipeline.data import DataSection, SplitSection
from pipeline.prepare import prepare_split
from tests.fixtures_data import write_fake_fashion_mnist

TRAIN = {"epochs": 1, "batch_size": 32, "lr": 0.01, "seed": 0}


@pytest.fixture()
def stage_env(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    write_fake_fashion_mnist(tmp_path / "raw", train_per_class=12, test_per_class=4)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({
        "mlflow": {"experiment": "t"},
        "baseline": {"model": {"arch": "convnet", "width": 8}, "train": TRAIN},
        "judge": {"model": {"arch": "judge_net", "width": 8}, "train": {**TRAIN, "seed": 7}},
    }))  # fmt: skip
    return tmp_path, params


def run_stage(tmp_path, params, stage, section, split_dir):
    argv = [
        "--params", str(params), "--data", str(split_dir), "--out", str(tmp_path / section),
        "--metrics", str(tmp_path / f"{section}.json"), "--plot", str(tmp_path / f"{section}_curve.json"),
    ]  # fmt: skip
    return run_classifier_stage(stage, section, argv, "test")


@pytest.mark.parametrize(
    "split,judge_classes",
    [
        ({"mode": "sample_disjoint"}, 10),
        ({"mode": "class_disjoint", "private_classes": [0, 1, 2, 3, 4], "public_classes": [5, 6, 7, 8, 9]}, 10),
        ({"mode": "class_disjoint", "private_classes": [0, 1], "public_classes": [5, 6, 7]}, 5),
    ],
)
def test_target_and_judge_class_spaces(stage_env, split, judge_classes):
    tmp_path, params = stage_env
    split_dir = tmp_path / "prepared"
    prepare_split(
        DataSection(root=str(tmp_path / "raw")),
        SplitSection(**split, private_train_per_class=5, private_test_per_class=2, public_per_class=5),
        split_dir,
    )
    private = len(split.get("private_classes", range(10)))
    baseline = run_stage(tmp_path, params, "train_baseline", "baseline", split_dir)
    judge = run_stage(tmp_path, params, "train_judge", "judge", split_dir)
    # the target learns the private split; the judge every class of the split, from its larger parts
    assert (baseline["train_part"], baseline["num_classes"]) == ("private_train", private)
    assert baseline["train_images"] == 5 * private
    assert (judge["train_part"], judge["test_part"]) == ("judge_train", "judge_test")
    assert judge["num_classes"] == judge_classes and judge["train_images"] == 12 * judge_classes
    assert load_checkpoint(tmp_path / "baseline" / "model.pt")[0].num_classes == private
    judge_model, meta = load_checkpoint(tmp_path / "judge" / "model.pt")
    assert judge_model.num_classes == judge_classes
    assert meta["params"]["judge"]["train"]["seed"] == 7
    assert json.loads((tmp_path / "judge.json").read_text())["epochs"] == 1
    assert len(json.loads((tmp_path / "judge_curve.json").read_text())) == 1
