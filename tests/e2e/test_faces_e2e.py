"""End to end on the face protocol's layout: split files over a flat image folder, 64 px RGB, ResNet-18.

The tree is GMI/KED-MI's CelebA layout (``img_align_celeba/000001.png`` + ``private_train.txt``,
``private_test.txt``, ``public.txt``) filled with real images: Fashion-MNIST classes written as
64 px RGB PNGs, each private class one "identity" (the package's files where installed, else class
templates; tests.fixtures_data). The profiles are the user's (``celeba64``) with CI-sized budgets
(``faces_smoke``); the whole `dvc repro` runs, prepare to gate and model card.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from torchvision.models import resnet18

from tests.e2e.smoke_repo import build_smoke_repo, run
from tests.e2e.test_pipeline_e2e import expected_stages
from tests.fixtures_data import fashion_mnist_or_templates, write_celeba_layout

pytestmark = pytest.mark.slow

PRIVATE = [0, 1, 2, 3, 4]
IDENTITY = {0: 4021, 1: 17, 2: 980, 3: 233, 4: 1500}  # CelebA-like ids, relabelled 0..4 in id order
PER_CLASS, TEST_PER_CLASS = 36, 6


@pytest.fixture(scope="module")
def faces_repo(tmp_path_factory) -> tuple[Path, dict[str, str], str]:
    root = tmp_path_factory.mktemp("faces")
    images, labels, origin = fashion_mnist_or_templates(PER_CLASS, seed=0)
    tree = write_celeba_layout(root / "celeba", images, labels, PRIVATE, TEST_PER_CLASS, identity_of=IDENTITY)
    torch.manual_seed(0)
    init = root / "resnet18-local.pth"  # a user's local ImageNet-shaped weights file
    torch.save(resnet18(weights=None).state_dict(), init)
    files = {"root": str(tree["images"]), "crop": None, **{part: str(tree[part]) for part in
             ("private_train", "private_test", "public")}}  # fmt: skip
    data = {"data": {"split_files": files}, "baseline": {"model": {"init_checkpoint": str(init)}}}
    work, env = build_smoke_repo(root, ["celeba64", "faces_smoke"], data=data)
    run([sys.executable, "-m", "pipeline.driver"], work, env, timeout=1800)
    return work, env, origin


def _json(work: Path, name: str) -> dict:
    return json.loads((work / name).read_text())


def test_every_stage_ran_and_is_locked(faces_repo):
    work, _, _ = faces_repo
    assert set(yaml.safe_load((work / "dvc.lock").read_text())["stages"]) == expected_stages(work)


def test_the_split_files_decided_the_parts(faces_repo):
    work, _, origin = faces_repo
    manifest = _json(work, "data/prepared/manifest.json")
    assert manifest["mode"] == "files" and manifest["image_shape"] == [3, 64, 64], origin
    train_n = PER_CLASS - TEST_PER_CLASS
    assert {k: v["count"] for k, v in manifest["parts"].items()} == {
        "private_train": 5 * train_n, "private_test": 5 * TEST_PER_CLASS, "public": 5 * PER_CLASS,
        "judge_train": 5 * train_n, "judge_test": 5 * TEST_PER_CLASS,
    }  # fmt: skip
    assert [row["original_id"] for row in manifest["classes"]] == sorted(IDENTITY.values())
    assert {"private_train", "private_test", "public"} <= set(manifest["sources"])


def test_targets_judge_and_init_checkpoint(faces_repo):
    work, _, origin = faces_repo
    baseline, judge = _json(work, "reports/train_baseline.json"), _json(work, "reports/train_judge.json")
    assert baseline["num_classes"] == judge["num_classes"] == 5  # the judge tells the private identities apart
    assert baseline["init_checkpoint"]["tensors"] == 120  # every resnet18 feature tensor, fc dropped
    assert baseline["natural_accuracy"] > 0.2, (origin, baseline)  # above chance (0.2) after two epochs
    checkpoint = torch.load(work / "models/baseline/model.pt", weights_only=True)
    assert checkpoint["model_config"]["arch"] == "resnet18" and checkpoint["model_config"]["in_channels"] == 3
    assert checkpoint["params"]["init_checkpoint"]["sha256"] == baseline["init_checkpoint"]["sha256"]
    judge_ckpt = torch.load(work / "models/judge/model.pt", weights_only=True)
    assert judge_ckpt["model_config"]["arch"] == "judge_net"  # another family than the target
    assert _json(work, "reports/harden.json")["phases"] == ["low_rank", "confidence_adaptation"]


def test_attacks_ran_on_the_class_subset_at_64_px(faces_repo):
    work, _, _ = faces_repo
    suite = yaml.safe_load((work / "params.yaml").read_text())["attack"]["suite"]
    for model in ("baseline", "hardened", "floor"):
        report = _json(work, f"reports/attack/{model}.json")
        assert report["classes"] == [0, 1, 2] and set(report["attacks"]) == set(suite)
        for row in report["attacks"].values():
            assert row["acc1_pooled"]["n"] == 2 * 3 * 1  # seeds x classes x samples per class
        grid = Image.open(work / f"reports/attack/grids/{model}/plgmi.png")
        assert grid.mode in ("RGB", "RGBA") and min(grid.size) >= 64


def test_the_uncalibrated_gate_is_inconclusive_and_the_card_says_why(faces_repo):
    work, _, _ = faces_repo
    gate = _json(work, "reports/gate.json")
    assert gate["verdict"] == "inconclusive"
    knn = next(c for c in gate["checks"] if c["name"] == "min_knn_distance")
    assert knn["threshold"] is None and knn["status"] == "undecided"
    assert np.isfinite(knn["value"])
    card = (work / "reports/model_card.md").read_text()
    assert "identity 17, identity 233" in card and "split files" in card and "threshold not set" in card
