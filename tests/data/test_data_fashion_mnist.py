"""Locating and loading Fashion-MNIST from fake files; the real files only if installed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from pipeline.data import (
    FASHION_MNIST_CLASSES,
    DataError,
    load_fashion_mnist,
    locate_fashion_mnist,
    read_idx,
    write_idx,
)
from pipeline.data import fashion_mnist as fm
from tests.fixtures_data import write_fake_fashion_mnist


def _no_network(cache_dir):
    raise RuntimeError("Error downloading train-images-idx3-ubyte.gz: no network")


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """No Debian package and no network: only explicit roots and the tmp cache can work."""
    monkeypatch.setattr(fm, "debian_candidates", lambda: [tmp_path / "no-debian"])
    monkeypatch.setattr(fm, "download_fashion_mnist", _no_network)
    return tmp_path / "cache"


@pytest.mark.parametrize("gz", [True, False])
def test_explicit_root(tmp_path, isolated, gz):
    write_fake_fashion_mnist(tmp_path / "fm", gz=gz)
    assert locate_fashion_mnist(str(tmp_path / "fm"), cache_dir=isolated) == tmp_path / "fm"


def test_explicit_root_missing_files_does_not_fall_through(tmp_path, monkeypatch):
    debian = tmp_path / "debian"
    write_fake_fashion_mnist(debian)
    monkeypatch.setattr(fm, "debian_candidates", lambda: [debian])
    root = tmp_path / "fm"
    paths = write_fake_fashion_mnist(root)
    paths["test_labels"].unlink()
    with pytest.raises(DataError) as info:
        locate_fashion_mnist(root)
    message = str(info.value)
    assert message.startswith(str(root))
    assert "t10k-labels-idx1-ubyte.gz" in message
    assert "train-images" not in message


def test_explicit_root_not_a_directory(tmp_path, isolated):
    with pytest.raises(DataError, match="not a directory"):
        locate_fashion_mnist(tmp_path / "absent", cache_dir=isolated)


def test_nothing_found_explains_three_ways(isolated):
    with pytest.raises(DataError) as info:
        locate_fashion_mnist(None, cache_dir=isolated)
    message = str(info.value)
    assert "data.root" in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert "internet" in message
    assert "no network" in message  # the download failure is reported, not swallowed


def test_debian_dir_used(tmp_path, monkeypatch):
    debian = tmp_path / "debian"
    write_fake_fashion_mnist(debian)
    monkeypatch.setattr(fm, "debian_candidates", lambda: [tmp_path / "empty", debian])
    monkeypatch.setattr(fm, "download_fashion_mnist", _no_network)
    assert locate_fashion_mnist(None, cache_dir=tmp_path / "cache") == debian
    assert locate_fashion_mnist("", cache_dir=tmp_path / "cache") == debian


def test_cache_used_without_download(isolated):
    write_fake_fashion_mnist(fm.torchvision_raw_dir(isolated))
    assert locate_fashion_mnist(None, cache_dir=isolated) == fm.torchvision_raw_dir(isolated)


def test_download_used_when_nothing_else(tmp_path, monkeypatch):
    monkeypatch.setattr(fm, "debian_candidates", lambda: [])

    def fake_download(cache_dir):
        return Path(write_fake_fashion_mnist(fm.torchvision_raw_dir(cache_dir))["train_images"]).parent

    monkeypatch.setattr(fm, "download_fashion_mnist", fake_download)
    assert locate_fashion_mnist(None, cache_dir=tmp_path) == fm.torchvision_raw_dir(tmp_path)


def test_download_disabled(isolated):
    with pytest.raises(DataError, match="download disabled"):
        locate_fashion_mnist(None, cache_dir=isolated, allow_download=False)


def test_download_moves_verified_files_and_cleans_up(tmp_path, monkeypatch):
    import torchvision.datasets

    class FakeFashionMNIST:
        def __init__(self, root, train, download):
            write_fake_fashion_mnist(Path(root) / "FashionMNIST" / "raw")

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", FakeFashionMNIST)
    raw = fm.download_fashion_mnist(tmp_path)
    assert raw == fm.torchvision_raw_dir(tmp_path)
    assert sorted(p.name for p in raw.iterdir()) == sorted(f"{n}.gz" for n in fm.FASHION_MNIST_FILES.values())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["FashionMNIST"]


def test_failed_download_leaves_nothing(tmp_path, monkeypatch):
    import torchvision.datasets

    class BrokenFashionMNIST:
        def __init__(self, root, train, download):
            raw = Path(root) / "FashionMNIST" / "raw"
            raw.mkdir(parents=True)
            (raw / "train-images-idx3-ubyte.gz").write_bytes(b"partial")
            raise RuntimeError("connection reset")

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", BrokenFashionMNIST)
    with pytest.raises(RuntimeError, match="connection reset"):
        fm.download_fashion_mnist(tmp_path)
    assert list(fm.torchvision_raw_dir(tmp_path).iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["FashionMNIST"]


def test_debian_candidates_from_dpkg(monkeypatch):
    listing = "/.\n/srv/fm\n/srv/fm/train-images-idx3-ubyte.gz\n/srv/fm/t10k-labels-idx1-ubyte.gz\n/usr/share/doc\n"
    monkeypatch.setattr(fm.shutil, "which", lambda name: "/usr/bin/dpkg")
    monkeypatch.setattr(
        fm.subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 0, stdout=listing, stderr="")
    )
    assert fm.debian_candidates() == [Path("/srv/fm"), fm.DEBIAN_DEFAULT_DIR]


def test_debian_candidates_without_dpkg(monkeypatch):
    monkeypatch.setattr(fm.shutil, "which", lambda name: None)
    assert fm.debian_candidates() == [fm.DEBIAN_DEFAULT_DIR]


def test_load_fake(tmp_path, isolated):
    paths = write_fake_fashion_mnist(tmp_path / "fm", train_per_class=3, test_per_class=2)
    data = load_fashion_mnist(tmp_path / "fm", cache_dir=isolated)
    assert data["train_images"].shape == (30, 1, 28, 28)
    assert data["test_images"].shape == (20, 1, 28, 28)
    assert data["train_images"].dtype == np.uint8
    assert data["train_labels"].dtype == np.int64
    assert np.bincount(data["train_labels"]).tolist() == [3] * 10
    assert data["sources"] == paths
    assert data["class_names"] == FASHION_MNIST_CLASSES


def test_load_label_out_of_range(tmp_path, isolated):
    paths = write_fake_fashion_mnist(tmp_path)
    labels = read_idx(paths["train_labels"])
    labels[4] = 10
    write_idx(paths["train_labels"], labels)
    with pytest.raises(DataError, match="out of range") as info:
        load_fashion_mnist(tmp_path, cache_dir=isolated)
    assert str(info.value).startswith(str(paths["train_labels"]))


def test_load_count_mismatch(tmp_path, isolated):
    paths = write_fake_fashion_mnist(tmp_path)
    write_idx(paths["test_labels"], read_idx(paths["test_labels"])[:-1])
    with pytest.raises(DataError, match="19 labels but") as info:
        load_fashion_mnist(tmp_path, cache_dir=isolated)
    assert str(info.value).startswith(str(paths["test_labels"]))


def test_load_wrong_image_dims(tmp_path, isolated):
    paths = write_fake_fashion_mnist(tmp_path)
    write_idx(paths["train_images"], np.zeros((30, 27, 28), dtype=np.uint8))
    with pytest.raises(DataError, match=r"\(N, 28, 28\)") as info:
        load_fashion_mnist(tmp_path, cache_dir=isolated)
    assert str(info.value).startswith(str(paths["train_images"]))


@pytest.mark.skipif(not fm.DEBIAN_DEFAULT_DIR.is_dir(), reason="dataset-fashion-mnist not installed")
def test_real_debian_files_read():
    """The small real files parse with the expected shapes (the 26 MB train images are skipped)."""
    files = fm.fashion_mnist_files(fm.DEBIAN_DEFAULT_DIR)
    labels = read_idx(files["test_labels"])
    images = read_idx(files["test_images"])
    assert images.shape == (10000, 28, 28)
    assert images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [1000] * 10
