"""The face protocol's split: files name each part's images (GMI/KED-MI's CelebA, FaceScrub, FFHQ).

The literature does not sample its CelebA split; it ships it. ``private_train`` and ``private_test``
list ``relative/path identity`` lines (the format of GMI/KED-MI's ``celeba_trainset.txt`` /
``celeba_testset.txt``), ``public`` lists the attacker's images (other identities, or FFHQ), with
the identity optional. This module reads the three files, refuses a split that would make the
attack results meaningless (one image in two parts, a private identity among the public ones) and
decodes every image (centre crop, resize) into an ``MISplit`` with ``mode = "files"``:

- private identities are relabelled ``0..K-1`` in increasing order of their ids in the files;
- every public image gets label ``K``, "not a private identity" (FFHQ has no identities; attacks
  never read public labels);
- the judge's parts are the private ones: the protocol's evaluation model is trained on the private
  training images and tells apart the private identities.

For a tree of identity folders (FaceScrub: ``actors/faces/<Name>/*.jpg``) ``write_split_files``
writes the three files (``python -m pipeline.data.split_files --help``).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from pipeline.data.config import SplitFilesSection, SplitSection
from pipeline.data.errors import DataError
from pipeline.data.image_folder import IMAGE_EXTENSIONS, decode_image, listed_image, split_file_lines
from pipeline.data.split import MISplit, SplitPart
from pipeline.io import atomic_write_text

FILE_PARTS: tuple[str, ...] = ("private_train", "private_test", "public")
SOURCE_FILES_HASHED = 2000  # above this many images the manifest hashes the split files, not every image


@dataclass(frozen=True)
class ListedImage:
    """One line of a split file: the image, its identity (None where the file gives none), where it was."""

    path: Path
    identity: int | None
    where: str  # "file:line", for error messages


def read_listing(split_file: Path, root: Path, *, needs_identity: bool) -> list[ListedImage]:
    """Parse ``relative/path [identity]`` lines (blank and ``#`` lines skipped); every file must exist."""
    listed: list[ListedImage] = []
    for where, line in split_file_lines(split_file):
        fields = line.split()
        if len(fields) > 2 or (needs_identity and len(fields) != 2):
            expected = "'relative/path identity'" if needs_identity else "'relative/path [identity]'"
            raise DataError(f"{where}: expected {expected}, got {line!r}")
        identity = None
        if len(fields) == 2:
            try:
                identity = int(fields[1])
            except ValueError:
                raise DataError(f"{where}: identity {fields[1]!r} is not an integer") from None
            if identity < 0:
                raise DataError(f"{where}: identity {identity} is negative")
        listed.append(ListedImage(listed_image(root, fields[0], where), identity, where))
    return listed


def _check_disjoint(listings: dict[str, list[ListedImage]]) -> None:
    """No image twice in a file or in two parts: an attacker's public image must never be a private one."""
    first_seen: dict[Path, str] = {}
    for part, listed in listings.items():
        for item in listed:
            key = item.path.resolve()
            if key in first_seen:
                raise DataError(
                    f"{item.where}: {item.path} is already listed at {first_seen[key]}; the parts of a "
                    f"model-inversion split must not share images ({part})"
                )
            first_seen[key] = item.where


def _private_identities(train: list[ListedImage], test: list[ListedImage], public: list[ListedImage]) -> list[int]:
    identities = sorted({item.identity for item in train})  # type: ignore[type-var]  # read with needs_identity
    known = set(identities)
    for item in test:
        if item.identity not in known:
            raise DataError(f"{item.where}: identity {item.identity} has no private training image")
    for item in public:
        if item.identity in known:
            raise DataError(
                f"{item.where}: identity {item.identity} is a private identity; the attacker's public data "
                "must show none of them"
            )
    return identities


def _decode_part(name: str, listed: list[ListedImage], cfg: SplitFilesSection) -> np.ndarray:
    images = [
        decode_image(item.path, cfg.channels, cfg.image_size, crop=cfg.crop)
        for item in tqdm(listed, desc=f"decode {name}", unit="img", leave=False)
    ]
    return np.stack(images)


def _part(images: np.ndarray, labels: np.ndarray, name: str) -> SplitPart:
    return SplitPart(images=images, labels=labels, indices=np.arange(len(labels), dtype=np.int64), source=name)


def make_files_split(cfg: SplitFilesSection, split: SplitSection) -> tuple[MISplit, dict[str, Path]]:
    """The split the files define, and the source files the manifest should hash (module docstring)."""
    root = Path(cfg.root)
    if not root.is_dir():
        raise DataError(f"{root}: data.split_files.root is not a directory")
    roots = {"private_train": root, "private_test": root, "public": Path(cfg.public_root or cfg.root)}
    listings = {
        name: read_listing(Path(getattr(cfg, name)), roots[name], needs_identity=name != "public")
        for name in FILE_PARTS
    }
    _check_disjoint(listings)
    identities = _private_identities(listings["private_train"], listings["private_test"], listings["public"])
    label_of = {identity: label for label, identity in enumerate(identities)}
    k = len(identities)
    parts = {}
    for name, listed in listings.items():
        labels = [k if name == "public" else label_of[item.identity] for item in listed]  # type: ignore[index]
        parts[name] = _part(_decode_part(name, listed, cfg), np.array(labels, dtype=np.int64), name)
    public_ids = sorted({item.identity for item in listings["public"] if item.identity is not None})
    mi_split = MISplit(
        mode="files",
        seed=split.seed,
        private_train=parts["private_train"],
        private_test=parts["private_test"],
        public=parts["public"],
        judge_train=parts["private_train"],
        judge_test=parts["private_test"],
        private_classes=tuple(identities),
        public_classes=tuple(public_ids),
        class_names=tuple(f"identity {identity}" for identity in identities),
        config=split,
    )
    sources = {name: Path(getattr(cfg, name)) for name in FILE_PARTS}
    if sum(len(listed) for listed in listings.values()) <= SOURCE_FILES_HASHED:
        for name, listed in listings.items():
            sources |= {str(item.path.relative_to(roots[name])): item.path for item in listed}
    return mi_split, sources


def _listed_paths(root: Path, folder: Path) -> list[str]:
    """The images under ``folder`` as paths relative to ``root``; a split-file line cannot hold a space."""
    images = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    relative = [p.relative_to(root).as_posix() for p in images]
    spaced = [r for r in relative if any(c.isspace() for c in r)]
    if spaced:
        raise DataError(f"{root / spaced[0]}: split-file paths cannot contain whitespace; rename the file")
    return relative


def write_split_files(
    private_root: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    test_fraction: float = 0.1,
    seed: int = 0,
    public_root: str | os.PathLike | None = None,
    identity_glob: str = "*",
) -> dict[str, Path]:
    """Split files for identity folders under ``private_root``, numbered in sorted path order.

    ``identity_glob`` finds the folders (FaceScrub: ``*/faces/*`` for ``actors/faces/<Name>`` and
    ``actresses/faces/<Name>``). Each identity's images are shuffled with ``seed`` and the first
    ``test_fraction`` of them (at least one) become its test images, as PPA does for FaceScrub
    (90 % / 10 %). ``public_root`` (FFHQ, or another identity tree) is listed whole, without
    identities. Paths are relative to their roots.
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    private_root, out_dir = Path(private_root), Path(out_dir)
    rng = np.random.default_rng(seed)
    train_lines, test_lines = [], []
    folders = sorted(p for p in private_root.glob(identity_glob) if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise DataError(f"{private_root}: no identity folders match {identity_glob!r}")
    for identity, folder in enumerate(folders):
        images = _listed_paths(private_root, folder)
        if len(images) < 2:
            raise DataError(f"{folder}: an identity needs at least 2 images (train and test)")
        order = rng.permutation(len(images))
        n_test = max(1, round(test_fraction * len(images)))
        for position, index in enumerate(order):
            line = f"{images[index]} {identity}"
            (test_lines if position < n_test else train_lines).append(line)
    written = {"private_train": out_dir / "private_train.txt", "private_test": out_dir / "private_test.txt"}
    atomic_write_text(written["private_train"], "\n".join(sorted(train_lines)) + "\n")
    atomic_write_text(written["private_test"], "\n".join(sorted(test_lines)) + "\n")
    if public_root is not None:
        public_root = Path(public_root)
        public = _listed_paths(public_root, public_root)
        if not public:
            raise DataError(f"{public_root}: no images ({'/'.join(IMAGE_EXTENSIONS)}) under the public root")
        written["public"] = out_dir / "public.txt"
        atomic_write_text(written["public"], "\n".join(public) + "\n")
    return written


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=write_split_files.__doc__)
    parser.add_argument("private_root", help="the folder holding one folder per identity")
    parser.add_argument("--out", required=True, help="folder for private_train.txt, private_test.txt, public.txt")
    parser.add_argument("--public-root", help="the attacker's images (FFHQ), listed without identities")
    parser.add_argument(
        "--identity-glob", default="*", help="identity folders under private_root (FaceScrub: '*/faces/*')"
    )
    parser.add_argument("--test-fraction", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    written = write_split_files(
        args.private_root,
        args.out,
        test_fraction=args.test_fraction,
        seed=args.seed,
        public_root=args.public_root,
        identity_glob=args.identity_glob,
    )
    for name, path in written.items():
        print(f"{name}: {path} ({sum(1 for _ in path.open(encoding='utf-8'))} lines)")


if __name__ == "__main__":
    main()
