"""``torchrun --nproc_per_node 2`` of the training stages, the GANs and the attack stage on CPUs (gloo).

A smoke-profile repo is trained up to ``attack@baseline`` by ``dvc repro`` (one process per stage);
the same stages are then run again under torchrun into another folder, and what the two processes
write (rank 0 alone) is compared with the single-process outputs.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import pytest
import torch
import yaml

from pipeline.prior.storage import load_prior
from pipeline.target_gan.storage import load_target_gan
from tests.e2e.smoke_repo import build_smoke_repo, run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained_repo(tmp_path_factory):
    work, env = build_smoke_repo(tmp_path_factory.mktemp("dist"), ["smoke"], learnable=True)
    env = {**env, "CALOR_NUM_THREADS": "1"}  # two ranks on two cores
    run(["dvc", "repro", "attack@baseline"], work, env)
    return work, env


def _torchrun(module: str, args: list[str], work: Path, env: dict[str, str]) -> None:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", module]
    run([*cmd, *args], work, env)


def _runs_named(work: Path, name: str) -> int:
    with sqlite3.connect(work / "mlflow.db") as db:
        return db.execute("select count(*) from runs where name = ?", (name,)).fetchone()[0]


def test_a_training_stage_under_torchrun_trains_what_one_process_trains(trained_repo):
    work, env = trained_repo
    runs_before = _runs_named(work, "train_baseline")
    _torchrun("stages.train_baseline", ["--data", "data/prepared", "--out", "dist/baseline",
                                        "--metrics", "dist/train_baseline.json", "--plot", "dist/curve.json"],
              work, env)  # fmt: skip
    single = json.loads((work / "reports/train_baseline.json").read_text())
    both = json.loads((work / "dist/train_baseline.json").read_text())
    tested = single["train_images"]  # accuracies move in steps of one image
    for key in ("natural_accuracy", "train_natural_accuracy"):
        assert both[key] == pytest.approx(single[key], abs=1.5 / tested), key
    for key in ("mean_true_class_prob", "train_mean_true_class_prob"):
        assert both[key] == pytest.approx(single[key], rel=1e-3), key
    curves = [json.loads((work / p).read_text()) for p in ("reports/plots/train_baseline.json", "dist/curve.json")]
    for one, two in zip(*curves, strict=True):
        assert two["train_loss"] == pytest.approx(one["train_loss"], rel=1e-4)
    assert _runs_named(work, "train_baseline") == runs_before + 1  # rank 0's run only
    assert sorted(p.name for p in (work / "dist").rglob("*")) == [
        "baseline", "curve.json", "model.pt", "train_baseline.json",
    ]  # fmt: skip


def test_the_attack_stage_under_torchrun_reports_what_one_process_reports(trained_repo):
    work, env = trained_repo
    _torchrun("stages.attack", ["--name", "baseline", "--model", "models/baseline/model.pt",
                                "--judge", "models/judge/model.pt", "--prior", "models/prior/prior.pt",
                                "--target-gans", "models/target_gan/baseline", "--data", "data/prepared",
                                "--report", "dist/attack.json", "--grids", "dist/grids"], work, env)  # fmt: skip
    single = json.loads((work / "reports/attack/baseline.json").read_text())
    both = json.loads((work / "dist/attack.json").read_text())
    for row in (*single["attacks"].values(), *both["attacks"].values()):
        row.pop("seconds")  # wall-clock time is the one thing that may differ
    assert both == single
    assert sorted(p.name for p in (work / "dist/grids").iterdir()) == sorted(
        p.name for p in (work / "reports/attack/grids/baseline").iterdir()
    )


def test_the_attack_stage_sharding_classes_reports_what_one_process_reports(trained_repo):
    """``attack.shard: classes``: both ranks run every (attack, seed), each on half of the classes.

    The reconstructions then agree with one process's to float precision (not bit for bit: each
    rank's target batch is half as large), so the judge's counts agree and every metric is close.
    """
    work, env = trained_repo
    params = yaml.safe_load((work / "params.yaml").read_text())
    params["attack"]["shard"] = "classes"
    (work / "dist").mkdir(exist_ok=True)
    (work / "dist/params_classes.yaml").write_text(yaml.safe_dump(params))
    _torchrun("stages.attack", ["--params", "dist/params_classes.yaml", "--name", "baseline",
                                "--model", "models/baseline/model.pt", "--judge", "models/judge/model.pt",
                                "--prior", "models/prior/prior.pt", "--target-gans", "models/target_gan/baseline",
                                "--data", "data/prepared", "--report", "dist/attack_classes.json",
                                "--grids", "dist/grids_classes"], work, env)  # fmt: skip
    single = json.loads((work / "reports/attack/baseline.json").read_text())
    both = json.loads((work / "dist/attack_classes.json").read_text())
    assert both["attacks"].keys() == single["attacks"].keys()
    for name, want in single["attacks"].items():
        got = both["attacks"][name]
        assert got["acc1_pooled"] == want["acc1_pooled"], name
        for metric in ("acc1", "acc5", "knn_distance", "psnr", "ssim", "train_closer_fraction"):
            if metric in want:
                assert got[metric]["mean"] == pytest.approx(want[metric]["mean"], rel=1e-3, abs=1e-4), (name, metric)
    assert sorted(p.name for p in (work / "dist/grids_classes").iterdir()) == sorted(
        p.name for p in (work / "reports/attack/grids/baseline").iterdir()
    )


def _state_dicts_close(one: torch.nn.Module, two: torch.nn.Module, what: str) -> None:
    first, second = one.state_dict(), two.state_dict()
    assert first.keys() == second.keys(), what
    for key, value in first.items():
        if value.is_floating_point():
            torch.testing.assert_close(second[key], value, rtol=1e-3, atol=1e-4, msg=f"{what}: {key}")
        else:
            assert torch.equal(second[key], value), f"{what}: {key}"


def test_the_prior_under_torchrun_trains_what_one_process_trains(trained_repo):
    work, env = trained_repo
    _torchrun("stages.train_prior", ["--data", "data/prepared", "--out", "dist/prior",
                                     "--metrics", "dist/train_prior.json"], work, env)  # fmt: skip
    single = json.loads((work / "reports/train_prior.json").read_text())
    both = json.loads((work / "dist/train_prior.json").read_text())
    for key in ("d_loss", "g_loss"):
        assert both[key] == pytest.approx(single[key], rel=1e-3), key
    one, _ = load_prior(work / "models/prior/prior.pt")
    two, _ = load_prior(work / "dist/prior/prior.pt")
    _state_dicts_close(one.generator, two.generator, "generator (EMA)")
    _state_dicts_close(one.discriminator, two.discriminator, "discriminator")


def test_the_target_gans_under_torchrun_train_what_one_process_trains(trained_repo):
    work, env = trained_repo
    args = ["--name", "baseline", "--model", "models/baseline/model.pt", "--prior", "models/prior/prior.pt",
            "--data", "data/prepared", "--out", "dist/target_gan", "--metrics", "dist/target_gan.json"]  # fmt: skip
    _torchrun("stages.target_gan", args, work, env)
    single = json.loads((work / "reports/target_gan/baseline.json").read_text())["gans"]
    both = json.loads((work / "dist/target_gan.json").read_text())["gans"]
    assert set(both) == set(single) == {"plgmi", "kedmi"}
    for kind in single:
        for key, values in single[kind]["history_mean_per_50_iterations"].items():
            assert both[kind]["history_mean_per_50_iterations"][key] == pytest.approx(values, rel=1e-3), (kind, key)
        one, _ = load_target_gan(work / f"models/target_gan/baseline/{kind}.pt")
        two, _ = load_target_gan(work / f"dist/target_gan/{kind}.pt")
        _state_dicts_close(one.generator, two.generator, f"{kind} generator")
        _state_dicts_close(one.discriminator, two.discriminator, f"{kind} discriminator")
