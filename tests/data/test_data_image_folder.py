"""ImageFolder loading: layout, conversion, split files and broken inputs."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pipeline.data import ConfigError, DataError, load_image_folder
from tests.fixtures_data import write_image_folder


def test_classes_sorted_and_labels(tmp_path):
    write_image_folder(tmp_path, {"zebra": 2, "ant": 3, "moth": 1})
    data = load_image_folder(tmp_path, image_size=8)
    assert data.class_names == ("ant", "moth", "zebra")
    assert data.labels.tolist() == [0, 0, 0, 1, 2, 2]
    assert data.labels.dtype == np.int64
    assert data.images.shape == (6, 1, 8, 8)
    assert data.images.dtype == np.uint8
    expected = np.asarray(Image.open(tmp_path / "moth" / "img_0.png"))
    np.testing.assert_array_equal(data.images[3, 0], expected)


def test_channels_and_resize(tmp_path):
    write_image_folder(tmp_path / "rgb", {"a": 1, "b": 1}, size=(10, 6), mode="RGB", ext=".jpg")
    write_image_folder(tmp_path / "rgb", {"c": 1}, size=(5, 5), mode="L", ext=".bmp")
    gray = load_image_folder(tmp_path / "rgb", image_size=4, channels=1)
    color = load_image_folder(tmp_path / "rgb", image_size=4, channels=3)
    assert gray.images.shape == (3, 1, 4, 4)
    assert color.images.shape == (3, 3, 4, 4)
    # a grayscale source converted to RGB has three equal channels
    np.testing.assert_array_equal(color.images[2, 0], color.images[2, 1])


def test_bad_channels(tmp_path):
    write_image_folder(tmp_path, {"a": 1})
    with pytest.raises(ConfigError, match="channels"):
        load_image_folder(tmp_path, image_size=8, channels=2)


def test_split_file(tmp_path):
    write_image_folder(tmp_path, {"a": 2, "b": 2})
    split = tmp_path / "train.txt"
    split.write_text("# comment\nb/img_1.png 1\n\na/img_0.png 0\na/img_1.png 1\n")
    data = load_image_folder(tmp_path, image_size=8, split_file=split)
    assert data.labels.tolist() == [1, 0, 1]
    assert [p.name for p in data.paths] == ["img_1.png", "img_0.png", "img_1.png"]


def test_split_label_out_of_range(tmp_path):
    write_image_folder(tmp_path, {"a": 1, "b": 1})
    split = tmp_path / "split.txt"
    split.write_text("a/img_0.png 0\nb/img_0.png 2\n")
    with pytest.raises(DataError, match="label 2 out of range 0..1") as info:
        load_image_folder(tmp_path, image_size=8, split_file=split)
    assert str(info.value).startswith(f"{split}:2")


@pytest.mark.parametrize("line", ["a/img_0.png", "a/img_0.png one"])
def test_split_malformed_line(tmp_path, line):
    write_image_folder(tmp_path, {"a": 1})
    split = tmp_path / "split.txt"
    split.write_text(line + "\n")
    with pytest.raises(DataError) as info:
        load_image_folder(tmp_path, image_size=8, split_file=split)
    assert str(info.value).startswith(f"{split}:1")


def test_split_missing_listed_file(tmp_path):
    write_image_folder(tmp_path, {"a": 1})
    split = tmp_path / "split.txt"
    split.write_text("a/gone.png 0\n")
    with pytest.raises(DataError, match="missing") as info:
        load_image_folder(tmp_path, image_size=8, split_file=split)
    assert str(info.value).startswith(str(tmp_path / "a" / "gone.png"))


def test_split_file_itself_missing(tmp_path):
    write_image_folder(tmp_path, {"a": 1})
    with pytest.raises(DataError, match="split file not found"):
        load_image_folder(tmp_path, image_size=8, split_file=tmp_path / "nope.txt")


def test_empty_class_folder(tmp_path):
    write_image_folder(tmp_path, {"a": 1})
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "notes.txt").write_text("not an image")
    with pytest.raises(DataError, match="empty class folder") as info:
        load_image_folder(tmp_path, image_size=8)
    assert str(info.value).startswith(str(tmp_path / "b"))


def test_no_class_folders(tmp_path):
    with pytest.raises(DataError, match="no class folders"):
        load_image_folder(tmp_path, image_size=8)


def test_root_missing(tmp_path):
    with pytest.raises(DataError, match="not a directory"):
        load_image_folder(tmp_path / "nope", image_size=8)


def test_size_mismatch_without_resize(tmp_path):
    write_image_folder(tmp_path, {"a": 1})
    write_image_folder(tmp_path, {"b": 1}, size=(9, 8))
    with pytest.raises(DataError, match="9x8, expected 8x8") as info:
        load_image_folder(tmp_path, image_size=8, resize=False)
    assert str(info.value).startswith(str(tmp_path / "b" / "img_0.png"))


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_image(tmp_path, damage):
    files = write_image_folder(tmp_path, {"a": 2}, size=(16, 16))
    bad = files["a"][1]
    bad.write_bytes(b"not a png" if damage == "garbage" else bad.read_bytes()[:60])
    with pytest.raises(DataError, match="unreadable or corrupt image") as info:
        load_image_folder(tmp_path, image_size=16)
    assert str(info.value).startswith(str(bad))


@pytest.fixture
def root_and_outside(tmp_path):
    """An image root with one class folder, and a valid image just outside it."""
    root = tmp_path / "images"
    write_image_folder(root, {"a": 2})
    outside = write_image_folder(tmp_path / "elsewhere", {"secret": 1})["secret"][0]
    return root, outside


def _no_image_may_open(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("an image was opened before the split file was checked")

    monkeypatch.setattr("pipeline.data.image_folder.Image.open", refuse)


@pytest.mark.parametrize("escape", ["dotdot", "absolute", "symlinked_file", "symlinked_folder"])
def test_a_split_line_outside_the_image_root_is_refused_before_any_image_opens(root_and_outside, escape, monkeypatch):
    root, outside = root_and_outside
    if escape == "dotdot":
        rel = "../elsewhere/secret/img_0.png"
    elif escape == "absolute":
        rel = str(outside)
    elif escape == "symlinked_file":
        (root / "a" / "link.png").symlink_to(outside)
        rel = "a/link.png"
    else:
        (root / "a" / "more").symlink_to(outside.parent, target_is_directory=True)
        rel = "a/more/img_0.png"
    split = root.parent / "split.txt"
    split.write_text(f"a/img_0.png 0\n{rel} 0\na/img_1.png 0\n")
    _no_image_may_open(monkeypatch)
    with pytest.raises(DataError) as info:
        load_image_folder(root, image_size=8, split_file=split)
    message = str(info.value)
    assert message.startswith(f"{split}:2: {rel!r} ")
    if escape == "absolute":
        assert "is an absolute path" in message
    else:
        assert f"resolves to {outside.resolve()}, outside the image root {root}" in message


def test_paths_that_stay_inside_the_root_are_accepted(root_and_outside):
    root, _ = root_and_outside
    (root / "a" / "alias.png").symlink_to(root / "a" / "img_1.png")  # a symlink within the root is fine
    split = root.parent / "split.txt"
    split.write_text("a/../a/img_0.png 0\na/alias.png 0\n")
    data = load_image_folder(root, image_size=8, split_file=split)
    assert [str(p.relative_to(root)) for p in data.paths] == ["a/../a/img_0.png", "a/alias.png"]
    np.testing.assert_array_equal(data.images[1, 0], np.asarray(Image.open(root / "a" / "img_1.png")))
