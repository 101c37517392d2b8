"""Find and load the real Fashion-MNIST files; never fabricate data.

Sources, in order: an explicit ``data.root``; the Debian package ``dataset-fashion-mnist``; a cache
filled by torchvision's downloader. If none works the error says how to get the files, because
training on synthetic stand-in data would make every downstream number meaningless.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.data.errors import DataError
from pipeline.data.idx import read_idx

FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip

# Logical name -> IDX file name without ``.gz`` (either form is accepted on disk).
FASHION_MNIST_FILES: dict[str, str] = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

DEBIAN_PACKAGE = "dataset-fashion-mnist"
DEBIAN_DEFAULT_DIR = Path("/usr/share/datasets/fashion-mnist")
DEFAULT_CACHE_DIR = Path("data/raw")


def fashion_mnist_files(directory: str | os.PathLike) -> dict[str, Path]:
    """Map each logical name to the file present in ``directory`` (``.gz`` preferred); skip absent ones."""
    directory = Path(directory)
    found: dict[str, Path] = {}
    for key, name in FASHION_MNIST_FILES.items():
        for candidate in (directory / f"{name}.gz", directory / name):
            if candidate.is_file():
                found[key] = candidate
                break
    return found


def _missing_files(directory: Path) -> list[str]:
    present = fashion_mnist_files(directory)
    return [f"{FASHION_MNIST_FILES[k]}.gz" for k in FASHION_MNIST_FILES if k not in present]


def debian_candidates() -> list[Path]:
    """Directories where the Debian package put the files (``dpkg -L``), else its default path."""
    candidates: list[Path] = []
    if shutil.which("dpkg"):
        try:
            result = subprocess.run(
                ["dpkg", "-L", DEBIAN_PACKAGE], capture_output=True, text=True, timeout=30, check=False
            )
        except (OSError, subprocess.SubprocessError):
            result = None
        if result is not None and result.returncode == 0:
            wanted = {f"{n}.gz" for n in FASHION_MNIST_FILES.values()} | set(FASHION_MNIST_FILES.values())
            for line in result.stdout.splitlines():
                path = Path(line.strip())
                if path.name in wanted and path.parent not in candidates:
                    candidates.append(path.parent)
    if DEBIAN_DEFAULT_DIR not in candidates:
        candidates.append(DEBIAN_DEFAULT_DIR)
    return candidates


def torchvision_raw_dir(cache_dir: str | os.PathLike) -> Path:
    """Where torchvision keeps the raw files for ``root=cache_dir`` (``<root>/FashionMNIST/raw``)."""
    return Path(cache_dir) / "FashionMNIST" / "raw"


def download_fashion_mnist(cache_dir: str | os.PathLike) -> Path:
    """Download with torchvision into a temp dir, then move the four ``.gz`` files into the cache.

    Files appear in the cache only after torchvision verified their MD5 sums, so an interrupted
    download never leaves a truncated file where the next run would find it.
    """
    from torchvision.datasets import FashionMNIST

    raw_dir = torchvision_raw_dir(cache_dir)
    raw_dir.mkdir(parents=True, exist_ok=True)
    tmp_root = Path(tempfile.mkdtemp(prefix=".download-", dir=Path(cache_dir)))
    try:
        FashionMNIST(root=str(tmp_root), train=True, download=True)
        tmp_raw = torchvision_raw_dir(tmp_root)
        for name in FASHION_MNIST_FILES.values():
            os.replace(tmp_raw / f"{name}.gz", raw_dir / f"{name}.gz")
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)
    return raw_dir


def locate_fashion_mnist(
    root: str | os.PathLike | None,
    *,
    cache_dir: str | os.PathLike = DEFAULT_CACHE_DIR,
    allow_download: bool = True,
) -> Path:
    """Return a directory holding all four Fashion-MNIST IDX files (see module docstring for order)."""
    if root is not None and str(root) != "":
        directory = Path(root)
        if not directory.is_dir():
            raise DataError(f"{directory}: data.root is not a directory")
        missing = _missing_files(directory)
        if missing:
            raise DataError(f"{directory}: data.root lacks Fashion-MNIST files {missing} (plain or .gz)")
        return directory

    tried: list[str] = []
    for directory in debian_candidates():
        missing = _missing_files(directory)
        if not missing:
            return directory
        tried.append(f"{directory} (missing {len(missing)} of 4 files)")

    cached = torchvision_raw_dir(cache_dir)
    if not _missing_files(cached):
        return cached
    tried.append(f"{cached} (cache, incomplete or absent)")

    if allow_download:
        try:
            downloaded = download_fashion_mnist(cache_dir)
        except Exception as err:  # any download failure (no network, bad mirror) is reported below
            tried.append(f"torchvision download into {cached} failed: {type(err).__name__}: {err}")
        else:
            if not _missing_files(downloaded):
                return downloaded
            tried.append(f"torchvision download into {cached} left files missing")
    else:
        tried.append("download disabled")

    raise DataError(
        "Fashion-MNIST not found. Tried: " + "; ".join(tried) + ". Get the four IDX files "
        "(train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
        "t10k-labels-idx1-ubyte.gz) one of three ways: (1) set data.root in params to a directory "
        f"holding them; (2) `apt-get install {DEBIAN_PACKAGE}` (installs to {DEBIAN_DEFAULT_DIR}); "
        f"(3) run once on a machine with internet access so torchvision downloads them into {cached}."
    )


def _check_images(path: Path, images: np.ndarray) -> np.ndarray:
    if images.dtype != np.uint8:
        raise DataError(f"{path}: images must be unsigned bytes, got {images.dtype}")
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DataError(f"{path}: images must have shape (N, 28, 28), got {images.shape}")
    return images[:, None, :, :]


def _check_labels(path: Path, labels: np.ndarray, count: int, images_path: Path) -> np.ndarray:
    if labels.ndim != 1:
        raise DataError(f"{path}: labels must be 1-dimensional, got shape {labels.shape}")
    if labels.shape[0] != count:
        raise DataError(f"{path}: {labels.shape[0]} labels but {images_path} holds {count} images")
    if labels.size and (labels.min() < 0 or labels.max() >= len(FASHION_MNIST_CLASSES)):
        bad = labels[(labels < 0) | (labels >= len(FASHION_MNIST_CLASSES))]
        raise DataError(f"{path}: labels out of range 0..9 (e.g. {bad[:5].tolist()})")
    return labels.astype(np.int64)


def load_fashion_mnist(root: str | os.PathLike | None, **locate_kwargs: Any) -> dict[str, Any]:
    """Locate and read Fashion-MNIST; images uint8 ``(N, 1, 28, 28)``, labels int64, plus file paths.

    Returns keys ``train_images, train_labels, test_images, test_labels, sources`` (logical name ->
    Path) and ``class_names``.
    """
    directory = locate_fashion_mnist(root, **locate_kwargs)
    sources = fashion_mnist_files(directory)
    out: dict[str, Any] = {"sources": sources, "class_names": FASHION_MNIST_CLASSES}
    for part in ("train", "test"):
        img_path, lbl_path = sources[f"{part}_images"], sources[f"{part}_labels"]
        images = _check_images(img_path, read_idx(img_path))
        out[f"{part}_images"] = images
        out[f"{part}_labels"] = _check_labels(lbl_path, read_idx(lbl_path), images.shape[0], img_path)
    return out
