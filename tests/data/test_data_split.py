"""The model-inversion split: disjointness, counts, seeding, modes, and atomic save/load."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from pipeline.data import (
    ConfigError,
    DataError,
    SplitSection,
    load_split_manifest,
    load_split_part,
    make_mi_split,
    save_split,
    to_float_tensor,
)
from pipeline.io import sha256_file
from tests.fixtures_data import fake_labelled_images

NAMES = ("zero", "one", "two", "three")


@pytest.fixture
def data():
    """4 classes, 12 train and 5 test images each, tiny 1x3x3 images."""
    train_images, train_labels = fake_labelled_images(12, num_classes=4, shape=(1, 3, 3), seed=1)
    test_images, test_labels = fake_labelled_images(5, num_classes=4, shape=(1, 3, 3), seed=2)
    return train_images, train_labels, test_images, test_labels


def _cfg(**kw):
    base = {"private_train_per_class": 5, "private_test_per_class": 3, "public_per_class": 4, "seed": 7}
    return SplitSection(**{**base, **kw})


def _split(data, **kw):
    return make_mi_split(*data, _cfg(**kw), class_names=NAMES)


def _original(part, data):
    """Original class of every sample, looked up through its source index."""
    labels = data[1] if part.source == "train" else data[3]
    return labels[part.indices]


def test_sample_disjoint(data):
    split = _split(data)
    assert split.private_classes == (0, 1, 2, 3)
    assert split.class_names == NAMES
    assert np.intersect1d(split.private_train.indices, split.public.indices).size == 0
    assert split.private_train.counts_per_class() == {0: 5, 1: 5, 2: 5, 3: 5}
    assert split.public.counts_per_class() == {0: 4, 1: 4, 2: 4, 3: 4}
    assert split.private_test.counts_per_class() == {0: 3, 1: 3, 2: 3, 3: 3}
    assert (split.private_test.source, split.public.source) == ("test", "train")
    for part, source_images in ((split.private_train, data[0]), (split.public, data[0]), (split.private_test, data[2])):
        np.testing.assert_array_equal(part.images, source_images[part.indices])
        np.testing.assert_array_equal(part.labels, _original(part, data))  # identity remap here
        assert part.images.dtype == np.uint8
        assert part.labels.dtype == np.int64


def test_private_labels_remapped_in_config_order(data):
    split = _split(data, private_classes=[3, 1])
    assert split.class_names == ("three", "one")
    for part in (split.private_train, split.public):
        pairs = set(zip(part.labels.tolist(), _original(part, data).tolist(), strict=True))
        assert pairs == {(0, 3), (1, 1)}


def test_seed_determinism(data):
    a, b, c = _split(data), _split(data), _split(data, seed=8)
    for name in ("private_train", "private_test", "public"):
        np.testing.assert_array_equal(a.part(name).indices, b.part(name).indices)
        np.testing.assert_array_equal(a.part(name).images, b.part(name).images)
    assert not np.array_equal(a.private_train.indices, c.private_train.indices)


def test_class_disjoint(data):
    split = _split(data, mode="class_disjoint", private_classes=[0, 1])
    assert split.public_classes == (2, 3)
    assert split.class_names == ("zero", "one", "two", "three")
    assert set(_original(split.public, data).tolist()) == {2, 3}
    assert split.public.counts_per_class() == {2: 4, 3: 4}
    assert split.private_train.counts_per_class() == {0: 5, 1: 5}
    assert np.intersect1d(split.private_train.indices, split.public.indices).size == 0


def test_class_disjoint_explicit_public(data):
    split = _split(data, mode="class_disjoint", private_classes=[2], public_classes=[0])
    assert split.class_names == ("two", "zero")
    assert split.public.labels.tolist() == [1] * 4
    assert set(_original(split.public, data).tolist()) == {0}


def test_too_few_images(data):
    with pytest.raises(
        DataError, match=r"^private class 0 \(zero\): the train set has 12 images of it, the split needs 13"
    ):
        _split(data, private_train_per_class=9)
    with pytest.raises(DataError, match="test set has 5 images of it, the split needs 6"):
        _split(data, private_test_per_class=6)


def test_empty_private_class(data):
    train_images, train_labels, test_images, test_labels = data
    keep = train_labels != 2
    with pytest.raises(DataError, match=r"^private class 2 \(two\): the train set has no images of it"):
        make_mi_split(train_images[keep], train_labels[keep], test_images, test_labels, _cfg(), class_names=NAMES)


def test_unknown_class_id(data):
    with pytest.raises(ConfigError, match="class 7 does not exist"):
        _split(data, private_classes=[7])


def test_no_public_classes_left(data):
    with pytest.raises(ConfigError, match="public_classes"):
        _split(data, mode="class_disjoint", private_classes=[0, 1, 2, 3])


def test_default_names_without_class_names(data):
    split = make_mi_split(*data, _cfg(private_classes=[1, 0]))
    assert split.class_names == ("class_1", "class_0")


def test_bad_input_arrays(data):
    train_images, train_labels, test_images, test_labels = data
    with pytest.raises(DataError, match="train images must be a uint8"):
        make_mi_split(train_images.astype(np.float32), train_labels, test_images, test_labels, _cfg())
    with pytest.raises(DataError, match="48 images but 47 labels"):
        make_mi_split(train_images, train_labels[:-1], test_images, test_labels, _cfg())


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"mode": "random"}, r"mode\n  Input should be 'sample_disjoint', 'class_disjoint' or 'files'"),
        ({"public_per_class": None}, r"public_per_class: required in sample_disjoint mode"),
        ({"mode": "files"}, r"private_train_per_class, private_test_per_class, public_per_class: the split files"),
        ({"private_train_per_class": 0}, r"private_train_per_class\n  Input should be greater than or equal to 1"),
        ({"public_per_class": 2.5}, r"public_per_class\n  Input should be a valid integer"),
        ({"private_test_per_class": True}, r"private_test_per_class\n  Input should be a valid integer"),
        ({"seed": -1}, r"seed\n  Input should be greater than or equal to 0"),
        ({"private_classes": [1, 1]}, r"private_classes\n  Value error, duplicate class ids in \[1, 1\]"),
        ({"private_classes": []}, r"private_classes\n  List should have at least 1 item"),
        ({"private_classes": "0,1"}, r"private_classes\n  Input should be a valid list"),
        ({"private_classes": [0, -1]}, r"private_classes\.1\n  Input should be greater than or equal to 0"),
        ({"public_classes": [1]}, "public_classes is only used in class_disjoint mode"),
        ({"mode": "class_disjoint"}, "private_classes: class_disjoint mode needs an explicit list"),
        (
            {"mode": "class_disjoint", "private_classes": [0, 1], "public_classes": [1, 2]},
            r"public_classes: classes \[1\] are also private",
        ),
    ],
)
def test_config_validation_names_field(kw, message):
    with pytest.raises(ValidationError, match=message):
        _cfg(**kw)


def test_config_round_trips_through_its_dump():
    cfg = _cfg(mode="class_disjoint", private_classes=[0, 1], seed=3)
    assert cfg.model_dump()["private_classes"] == [0, 1]
    assert SplitSection.model_validate(cfg.model_dump()) == cfg
    with pytest.raises(ValidationError, match="privat_classes"):
        SplitSection.model_validate({**cfg.model_dump(), "privat_classes": [0]})


@pytest.fixture
def sources(tmp_path):
    paths = {}
    for key in ("train_images", "train_labels"):
        paths[key] = tmp_path / "src" / f"{key}.bin"
        paths[key].parent.mkdir(exist_ok=True)
        paths[key].write_bytes(key.encode())
    return paths


def test_save_load_round_trip(tmp_path, data, sources):
    split = _split(data, mode="class_disjoint", private_classes=[1, 0])
    out = tmp_path / "split"
    save_split(split, out, sources)
    for name in ("private_train", "private_test", "public"):
        images, labels = load_split_part(out, name)
        np.testing.assert_array_equal(images, split.part(name).images)
        np.testing.assert_array_equal(labels, split.part(name).labels)
        assert images.dtype == np.uint8
        assert labels.dtype == np.int64
    manifest = load_split_manifest(out)
    assert manifest == json.loads((out / "manifest.json").read_text())
    assert manifest["mode"] == "class_disjoint"
    assert manifest["seed"] == 7
    assert manifest["num_private_classes"] == 2
    assert manifest["private_classes"] == [1, 0]
    assert manifest["public_classes"] == [2, 3]
    assert manifest["classes"][0] == {"label": 0, "original_id": 1, "name": "one", "role": "private"}
    assert manifest["classes"][3] == {"label": 3, "original_id": 3, "name": "three", "role": "public"}
    assert manifest["parts"]["public"]["counts_per_class"] == {"2": 4, "3": 4}
    assert manifest["parts"]["private_test"]["count"] == 6
    assert manifest["parts"]["private_train"]["sha256"] == sha256_file(out / "private_train.npz")
    assert manifest["sources"]["train_labels"] == {
        "path": str(sources["train_labels"]),
        "sha256": sha256_file(sources["train_labels"]),
    }
    assert manifest["image_shape"] == [1, 3, 3]
    assert SplitSection.model_validate(manifest["config"]) == split.config
    assert sorted(p.name for p in out.iterdir()) == [
        "judge_test.npz",
        "judge_train.npz",
        "manifest.json",
        "private_test.npz",
        "private_train.npz",
        "public.npz",
    ]


def test_save_missing_source(tmp_path, data):
    with pytest.raises(DataError, match="source file 'train_images' not found"):
        save_split(_split(data), tmp_path / "split", {"train_images": tmp_path / "gone"})
    assert not (tmp_path / "split").exists()


def test_save_failing_midway_leaves_no_partial_files(tmp_path, data, sources, monkeypatch):
    out = tmp_path / "split"
    save_split(_split(data), out, sources)  # an earlier complete split in the same place
    real = np.savez_compressed
    calls = []

    def flaky(file, **arrays):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full")
        real(file, **arrays)

    monkeypatch.setattr(np, "savez_compressed", flaky)
    with pytest.raises(OSError, match="disk full"):
        save_split(_split(data, seed=99), out, sources)
    names = sorted(p.name for p in out.iterdir())
    assert not [n for n in names if n.endswith(".tmp") or n.startswith(".")]
    assert "manifest.json" not in names  # the directory no longer claims to be a complete split
    with pytest.raises(DataError, match="manifest not found"):
        load_split_part(out, "private_train")
    for name in names:  # whatever .npz remains is whole (old or new), never truncated
        with np.load(out / name) as npz:
            assert set(npz.files) == {"images", "labels", "indices"}


def test_load_detects_changed_part(tmp_path, data, sources):
    out = tmp_path / "split"
    save_split(_split(data), out, sources)
    other = tmp_path / "other"
    save_split(_split(data, seed=3), other, sources)
    (out / "public.npz").write_bytes((other / "public.npz").read_bytes())
    with pytest.raises(DataError, match="sha256 differs") as info:
        load_split_part(out, "public")
    assert str(info.value).startswith(str(out / "public.npz"))


def test_load_unknown_part(tmp_path):
    with pytest.raises(DataError, match="unknown split part"):
        load_split_part(tmp_path, "validation")


def test_to_float_tensor():
    images = np.array([[[[0, 255], [51, 102]]]], dtype=np.uint8)
    out = to_float_tensor(images)
    assert out.dtype == torch.float32
    assert out.shape == (1, 1, 2, 2)
    assert torch.allclose(out, torch.tensor([[[[0.0, 1.0], [0.2, 0.4]]]]))
    assert torch.equal(to_float_tensor(torch.from_numpy(images)), out)
    with pytest.raises(DataError, match="uint8"):
        to_float_tensor(images.astype(np.float32))


def test_public_class_too_few(data):
    with pytest.raises(
        DataError, match=r"^public class 3 \(three\): the train set has 12 images of it, the split needs 13"
    ):
        _split(data, mode="class_disjoint", private_classes=[0], public_classes=[3], public_per_class=13)


def test_overlap_check_raises():
    from pipeline.data.split import SplitPart, _check_disjoint

    def part(indices):
        indices = np.array(indices, dtype=np.int64)
        return SplitPart(
            np.zeros((len(indices), 1, 1, 1), np.uint8), np.zeros(len(indices), np.int64), indices, "train"
        )

    with pytest.raises(DataError, match="share 1 train-set images"):
        _check_disjoint(part([1, 2]), "private_train", part([2, 3]), "public")
    with pytest.raises(DataError, match="same train-set image twice"):
        _check_disjoint(part([1, 1]), "private_train", part([3]), "public")


def test_judge_parts_cover_every_class_the_judge_tells_apart(data):
    split = _split(data, mode="class_disjoint", private_classes=[3, 1], public_classes=[0])
    # labels follow the split's scheme: private 3 → 0, private 1 → 1, public 0 → 2
    for part, source in ((split.judge_train, "train"), (split.judge_test, "test")):
        assert part.source == source
        pairs = set(zip(part.labels.tolist(), _original(part, data).tolist(), strict=True))
        assert pairs == {(0, 3), (1, 1), (2, 0)}
    # null = every image of the class: the judge sees more than the target (private training images included)
    assert split.judge_train.counts_per_class() == {0: 12, 1: 12, 2: 12}
    assert split.judge_test.counts_per_class() == {0: 5, 1: 5, 2: 5}
    assert set(split.private_train.indices) < set(split.judge_train.indices)


def test_judge_parts_can_be_subsampled_and_are_checked(data):
    split = _split(data, judge_train_per_class=7, judge_test_per_class=2)
    assert split.judge_train.counts_per_class() == {0: 7, 1: 7, 2: 7, 3: 7}
    assert split.judge_test.counts_per_class() == {0: 2, 1: 2, 2: 2, 3: 2}
    too_many = r"judge class 0 \(zero\): the train set has 12 images of it, the split needs 13"
    with pytest.raises(DataError, match=too_many):
        _split(data, judge_train_per_class=13)
    with pytest.raises(ValidationError, match="judge_test_per_class"):
        _split(data, judge_test_per_class=0)
