"""The one reader of the prepared split: labelled parts as tensors, the attacker's public part without labels."""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from pipeline.data import PART_NAMES, load_labelled, load_public, load_split_part
from pipeline.data.config import DataSection, SplitSection
from pipeline.prepare import prepare_split
from tests.fixtures_data import write_fake_fashion_mnist

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def split_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("parts")
    write_fake_fashion_mnist(root / "raw", train_per_class=12, test_per_class=4)
    split = SplitSection(mode="class_disjoint", private_classes=[0, 1], public_classes=[5, 6],
                         private_train_per_class=5, private_test_per_class=2, public_per_class=5)  # fmt: skip
    prepare_split(DataSection(root=str(root / "raw")), split, root / "prepared")
    return root / "prepared"


def test_labelled_parts_are_the_checked_files_as_tensors(split_dir):
    for part in PART_NAMES:
        images, labels = load_split_part(split_dir, part)
        loaded = load_labelled(split_dir, part)
        assert torch.equal(loaded.images, torch.from_numpy(images))
        assert torch.equal(loaded.labels, torch.from_numpy(labels))


def test_the_public_part_carries_its_images_and_no_labels(split_dir):
    public = load_public(split_dir)
    assert [field.name for field in dataclasses.fields(public)] == ["images"]
    assert not hasattr(public, "labels")
    with pytest.raises(dataclasses.FrozenInstanceError):
        public.labels = torch.zeros(len(public))  # nothing can be attached later either
    assert torch.equal(public.images, load_labelled(split_dir, "public").images)
    assert public.images.dtype == torch.uint8 and len(public) == 10


class Handed(Exception):
    """Raised by a stand-in for the library call once it has seen what the stage hands it."""


@contextlib.contextmanager
def no_tracking(*_args, **_kwargs):
    yield type("Run", (), {"log_data": lambda self, *a, **k: None})()


def test_attacker_stages_hand_over_public_images_loaded_without_labels(split_dir, monkeypatch):
    """attack, target_gan and train_prior load the public part with load_public only."""
    import stages.attack
    import stages.target_gan
    import stages.train_prior

    public_loads: list[str] = []
    real_labelled = load_labelled

    def labelled(directory, part):
        public_loads.append(part)
        return real_labelled(directory, part)

    seen = {}

    def hand(name):
        def stand_in(*args, **_kwargs):
            seen[name] = args
            raise Handed

        return stand_in

    params = str(REPO / "params.yaml")
    for module in (stages.attack, stages.target_gan, stages.train_prior):
        monkeypatch.setattr(module, "stage_run", no_tracking)
        if hasattr(module, "load_labelled"):
            monkeypatch.setattr(module, "load_labelled", labelled)
    for module in (stages.attack, stages.target_gan):
        monkeypatch.setattr(module, "load_checkpoint", lambda _path: (None, {"params": {}}))
        monkeypatch.setattr(module, "load_prior", lambda _path: (None, {}))
    monkeypatch.setattr(stages.attack, "load_target_gans", lambda *_: {})
    monkeypatch.setattr(stages.attack, "current_runtime", lambda: SimpleNamespace(prepare=lambda model: model))
    monkeypatch.setattr(stages.attack.PrivateReference, "build", staticmethod(lambda *_: None))
    monkeypatch.setattr(stages.attack, "run_suite", hand("attack"))
    monkeypatch.setattr(stages.target_gan, "train_one", hand("target_gan"))
    monkeypatch.setattr(stages.train_prior, "train_prior", hand("train_prior"))
    runs = {
        stages.attack: ["--name", "m", "--model", "m", "--judge", "j", "--prior", "p", "--target-gans", "t",
                        "--report", "r", "--grids", "g"],
        stages.target_gan: ["--name", "m", "--model", "m", "--prior", "p", "--out", "o", "--metrics", "x"],
        stages.train_prior: ["--out", "o", "--metrics", "x"],
    }  # fmt: skip
    for module, argv in runs.items():
        with pytest.raises(Handed):
            module.main(["--params", params, "--data", str(split_dir), *argv])
    expected = load_public(split_dir).images
    assert torch.equal(seen["attack"][3], expected)  # run_suite(model, judge, priors, public_images, ...)
    assert torch.equal(seen["target_gan"][2], expected)  # train_one(kind, model, public_uint8, ...)
    assert torch.equal(torch.from_numpy(seen["train_prior"][0]), expected)
    assert "public" not in public_loads and public_loads  # the attack stage read its private parts labelled
