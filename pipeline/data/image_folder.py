"""Users' own images in the ImageFolder layout: ``root/<class_name>/*.png|jpg|jpeg|bmp``.

Class index = position of the class folder in sorted order (as in torchvision). An optional split
file lists ``relative/path label`` lines to choose a subset or override labels. Every image is
decoded eagerly so a corrupt file fails the data stage, not an attack hours later.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from pipeline.data.errors import ConfigError, DataError

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp")
_PIL_MODES = {1: "L", 3: "RGB"}


@dataclass(frozen=True)
class ImageFolderData:
    """Decoded images ``(N, C, H, W)`` uint8, labels int64, class names by index, and source files."""

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    paths: tuple[Path, ...]


def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def find_classes(root: Path) -> list[str]:
    """Sorted class folder names; the index in this list is the label."""
    if not root.is_dir():
        raise DataError(f"{root}: image folder root is not a directory")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"{root}: no class folders (expected root/<class_name>/<image files>)")
    for name in classes:
        if not any(_is_image(p) for p in (root / name).rglob("*")):
            raise DataError(f"{root / name}: empty class folder (no {'/'.join(IMAGE_EXTENSIONS)} files)")
    return classes


def _scan(root: Path, classes: list[str]) -> list[tuple[Path, int]]:
    items: list[tuple[Path, int]] = []
    for label, name in enumerate(classes):
        items.extend((p, label) for p in sorted((root / name).rglob("*")) if _is_image(p))
    return items


def listed_image(root: Path, rel: str, where: str) -> Path:
    """The image a split-file line names: inside ``root`` (no ``../``, absolute path or symlink out), and present.

    A split file is data, not code, yet without the first check a line could make the prepare stage
    read, and ship into the split, any image the process can see.
    """
    if Path(rel).is_absolute():
        raise DataError(f"{where}: {rel!r} is an absolute path; split files list paths relative to {root}")
    resolved = (root / rel).resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise DataError(f"{where}: {rel!r} resolves to {resolved}, outside the image root {root}")
    path = root / rel
    if not path.is_file():
        raise DataError(f"{path}: listed in {where} but missing")
    return path


def split_file_lines(split_file: Path) -> Iterator[tuple[str, str]]:
    """``("file:line", text)`` for each line that lists an image (blank and ``#`` lines skipped).

    Shared by the image folder's split file and the face protocol's split files; a missing file or
    one that lists nothing is an error naming it.
    """
    if not split_file.is_file():
        raise DataError(f"{split_file}: split file not found")
    listed = False
    for lineno, raw in enumerate(split_file.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if line and not line.startswith("#"):
            listed = True
            yield f"{split_file}:{lineno}", line
    if not listed:
        raise DataError(f"{split_file}: split file lists no images")


def read_split_file(split_file: Path, root: Path, num_classes: int) -> list[tuple[Path, int]]:
    """Parse ``relative/path label`` lines (paths relative to ``root``; blank and ``#`` lines skipped)."""
    items: list[tuple[Path, int]] = []
    for where, line in split_file_lines(split_file):
        parts = line.rsplit(maxsplit=1)
        if len(parts) != 2:
            raise DataError(f"{where}: expected 'relative/path label', got {line!r}")
        rel, label_text = parts
        try:
            label = int(label_text)
        except ValueError:
            raise DataError(f"{where}: label {label_text!r} is not an integer") from None
        if not 0 <= label < num_classes:
            raise DataError(f"{where}: label {label} out of range 0..{num_classes - 1} ({num_classes} class folders)")
        items.append((listed_image(root, rel, where), label))
    return items


def decode_image(
    path: Path, channels: int, image_size: int, *, resize: bool = True, crop: int | None = None
) -> np.ndarray:
    """One file as ``(channels, image_size, image_size)`` uint8: optional centre ``crop``, then resize.

    The crop is the face protocol's (GMI's CelebA: the centre 108 x 108 of the aligned 178 x 218).
    """
    try:
        with Image.open(path) as img:
            img.load()
            converted = img.convert(_PIL_MODES[channels])
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise DataError(f"{path}: unreadable or corrupt image ({err})") from err
    if crop is not None:
        width, height = converted.size
        if crop > min(width, height):
            raise DataError(f"{path}: image is {width}x{height}, smaller than the {crop}x{crop} crop")
        left, top = (width - crop) // 2, (height - crop) // 2
        converted = converted.crop((left, top, left + crop, top + crop))
    size = (image_size, image_size)
    if converted.size != size:
        if not resize:
            width, height = converted.size
            raise DataError(f"{path}: image is {width}x{height}, expected {image_size}x{image_size} (resize=False)")
        converted = converted.resize(size, Image.Resampling.BILINEAR)
    array = np.asarray(converted, dtype=np.uint8)
    return array[None, :, :] if channels == 1 else array.transpose(2, 0, 1)


def load_image_folder(
    root: str | os.PathLike,
    image_size: int,
    channels: int = 1,
    *,
    resize: bool = True,
    split_file: str | os.PathLike | None = None,
) -> ImageFolderData:
    """Decode every image (or those listed in ``split_file``) to ``(N, channels, size, size)`` uint8."""
    if channels not in _PIL_MODES:
        raise ConfigError(f"channels must be 1 or 3, got {channels!r}")
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise ConfigError(f"image_size must be a positive integer, got {image_size!r}")
    root = Path(root)
    classes = find_classes(root)
    if split_file is None:
        items = _scan(root, classes)
    else:
        items = read_split_file(Path(split_file), root, len(classes))
    images = np.stack([decode_image(path, channels, image_size, resize=resize) for path, _ in items])
    labels = np.array([label for _, label in items], dtype=np.int64)
    return ImageFolderData(images, labels, tuple(classes), tuple(path for path, _ in items))
