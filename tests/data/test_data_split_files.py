"""The face protocol's split files: parsing, refusals that keep attacks honest, relabelling, the manifest."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from pipeline.data import DataError, DataSection, SplitSection, load_split_manifest, load_split_part
from pipeline.data.split_files import make_files_split, read_listing, write_split_files
from pipeline.prepare import prepare_split
from tests.fixtures_data import learnable_labelled_images, write_celeba_layout

PRIVATE = [0, 2, 4]
IDENTITY = {0: 907, 2: 13, 4: 450}  # non-contiguous ids, not in class order: relabelling is tested


@pytest.fixture
def layout(tmp_path):
    images, labels = learnable_labelled_images(per_class=4, num_classes=6, seed=1)
    paths = write_celeba_layout(tmp_path / "celeba", images, labels, PRIVATE, test_per_class=1, size=16,
                                identity_of=IDENTITY)  # fmt: skip
    return paths, images, labels


def _data(paths, **overrides) -> DataSection:
    files = {"root": str(paths["images"]), "private_train": str(paths["private_train"]),
             "private_test": str(paths["private_test"]), "public": str(paths["public"]), "image_size": 16}  # fmt: skip
    return DataSection.model_validate({"source": "split_files", "split_files": {**files, **overrides}})


FILES_MODE = SplitSection(mode="files")


def test_identities_are_relabelled_in_id_order_and_the_judge_gets_the_private_parts(layout):
    paths, images, labels = layout
    split, sources = make_files_split(_data(paths).split_files, FILES_MODE)
    assert split.mode == "files"
    assert split.private_classes == (13, 450, 907)  # sorted ids -> labels 0, 1, 2
    assert split.class_names == ("identity 13", "identity 450", "identity 907")
    assert split.private_train.counts_per_class() == {0: 3, 1: 3, 2: 3}
    assert split.private_test.counts_per_class() == {0: 1, 1: 1, 2: 1}
    assert split.public.counts_per_class() == {3: 12}  # 3 public classes x 4, one "not private" label K = 3
    assert split.judge_train is split.private_train and split.judge_test is split.private_test
    assert split.private_train.images.shape[1:] == (3, 16, 16)
    # the image behind label 0 (identity 13 = class 2) is class 2's template, not another class's
    class2 = images[labels == 2].mean(axis=0)[0].astype(float)
    mean_label0 = split.private_train.images[split.private_train.labels == 0].mean(axis=(0, 1))
    resized = np.asarray(Image.fromarray(class2.astype(np.uint8)).resize((16, 16), Image.Resampling.BILINEAR))
    others = [images[labels == c].mean(axis=0)[0] for c in (0, 4)]
    assert np.abs(mean_label0 - resized).mean() < min(
        np.abs(mean_label0 - np.asarray(Image.fromarray(o.astype(np.uint8)).resize((16, 16)))).mean() for o in others
    )
    assert {"private_train", "private_test", "public"} <= set(sources)  # the files are hashed in the manifest


def test_prepare_writes_a_loadable_split_with_a_private_only_class_table(layout, tmp_path):
    paths, _, _ = layout
    prepare_split(_data(paths), FILES_MODE, tmp_path / "prepared")
    manifest = load_split_manifest(tmp_path / "prepared")
    assert manifest["mode"] == "files"
    assert [row["original_id"] for row in manifest["classes"]] == [13, 450, 907]
    assert {row["role"] for row in manifest["classes"]} == {"private"}
    images, labels = load_split_part(tmp_path / "prepared", "public")
    assert images.shape == (12, 3, 16, 16) and set(labels.tolist()) == {3}
    assert json.loads((tmp_path / "prepared/manifest.json").read_text())["config"]["mode"] == "files"


def test_centre_crop_happens_before_the_resize(tmp_path):
    root = tmp_path / "imgs"
    root.mkdir()
    canvas = np.zeros((218, 178), dtype=np.uint8)
    canvas[55:163, 35:143] = 255  # GMI's crop window of an aligned CelebA image (108 x 108 at the centre)
    for name in ("a.png", "b.png", "c.png"):
        Image.fromarray(canvas).save(root / name)
    (tmp_path / "train.txt").write_text("a.png 5\n")
    (tmp_path / "test.txt").write_text("b.png 5\n")
    (tmp_path / "public.txt").write_text("c.png\n")
    files = {"root": str(root), "private_train": str(tmp_path / "train.txt"),
             "private_test": str(tmp_path / "test.txt"), "public": str(tmp_path / "public.txt"),
             "image_size": 8}  # fmt: skip
    cropped, _ = make_files_split(DataSection.model_validate(
        {"source": "split_files", "split_files": {**files, "crop": 108}}).split_files, FILES_MODE)  # fmt: skip
    whole, _ = make_files_split(DataSection.model_validate(
        {"source": "split_files", "split_files": files}).split_files, FILES_MODE)  # fmt: skip
    assert cropped.private_train.images.min() == 255  # only the window is left
    assert whole.private_train.images.min() < 50  # the black border is still there


@pytest.mark.parametrize(
    ("part", "line", "message"),
    [
        ("private_train", "000001.png", r"private_train.txt:1: expected 'relative/path identity'"),
        ("private_train", "000001.png x", r"private_train.txt:1: identity 'x' is not an integer"),
        ("private_train", "000001.png -3", r"private_train.txt:1: identity -3 is negative"),
        ("private_train", "nope.png 1", r"nope.png: listed in .*private_train.txt:1 but missing"),
        ("private_train", "../escape.png 1", r"outside the image root"),
        ("public", "a b c", r"public.txt:1: expected 'relative/path \[identity\]'"),
    ],
)
def test_bad_lines_name_the_file_and_line(layout, part, line, message):
    paths, _, _ = layout
    paths[part].write_text(line + "\n")
    with pytest.raises(DataError, match=message):
        make_files_split(_data(paths).split_files, FILES_MODE)


def test_an_image_in_two_parts_is_refused(layout):
    paths, _, _ = layout
    leaked = paths["private_train"].read_text().splitlines()[0].split()[0]
    paths["public"].write_text(paths["public"].read_text() + leaked + "\n")
    with pytest.raises(DataError, match=r"public.txt:13: .* is already listed at .*private_train.txt:1"):
        make_files_split(_data(paths).split_files, FILES_MODE)


def test_a_private_identity_in_the_public_file_is_refused(layout):
    paths, _, _ = layout
    first_public = paths["public"].read_text().splitlines()[0]
    paths["public"].write_text(f"{first_public} 450\n")
    with pytest.raises(DataError, match=r"public.txt:1: identity 450 is a private identity"):
        make_files_split(_data(paths).split_files, FILES_MODE)


def test_a_test_identity_without_training_images_is_refused(layout):
    paths, _, _ = layout
    name = paths["private_test"].read_text().splitlines()[0].split()[0]
    paths["private_test"].write_text(f"{name} 77\n")
    with pytest.raises(DataError, match=r"private_test.txt:1: identity 77 has no private training image"):
        make_files_split(_data(paths).split_files, FILES_MODE)


def test_source_and_mode_must_agree(layout, tmp_path):
    paths, _, _ = layout
    sampled = SplitSection(mode="class_disjoint", private_classes=[0], private_train_per_class=1,
                           private_test_per_class=1, public_per_class=1)  # fmt: skip
    with pytest.raises(
        ValueError,
        match="split.mode: data.source 'split_files' decides the parts itself; set mode to files, not class_disjoint",
    ):
        prepare_split(_data(paths), sampled, tmp_path / "out")
    fashion = DataSection(source="fashion_mnist", root=str(tmp_path))
    with pytest.raises(
        ValueError, match="split.mode: 'files' needs data.source 'split_files' \\(not 'fashion_mnist'\\)"
    ):
        prepare_split(fashion, FILES_MODE, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_source_needs_its_section():
    with pytest.raises(ValueError, match="source 'split_files' needs the data.split_files section"):
        DataSection.model_validate({"source": "split_files"})


def test_read_listing_skips_comments_and_allows_a_missing_public_identity(tmp_path):
    (tmp_path / "x.png").write_bytes(b"")
    (tmp_path / "list.txt").write_text("# header\n\nx.png\n")
    listed = read_listing(tmp_path / "list.txt", tmp_path, needs_identity=False)
    assert [(item.path.name, item.identity, item.where.rsplit(":", 1)[1]) for item in listed] == [("x.png", None, "3")]


def test_write_split_files_for_an_identity_tree(tmp_path):
    tree = tmp_path / "facescrub"
    for group, names in (("actors", ["Bob_B", "Al_A"]), ("actresses", ["Cy_C"])):
        for name in names:
            folder = tree / group / "faces" / name
            folder.mkdir(parents=True)
            for i in range(10):
                Image.new("RGB", (4, 4)).save(folder / f"{name}_{i}.jpg")
    (tmp_path / "ffhq/00000").mkdir(parents=True)
    for i in range(3):
        Image.new("RGB", (4, 4)).save(tmp_path / f"ffhq/00000/{i:05d}.png")
    written = write_split_files(tree, tmp_path / "splits", public_root=tmp_path / "ffhq", identity_glob="*/faces/*")
    train = [line.split() for line in written["private_train"].read_text().splitlines()]
    test = [line.split() for line in written["private_test"].read_text().splitlines()]
    assert len(train) == 27 and len(test) == 3  # 10 % of each identity's 10 images
    by_identity: dict[str, set[str]] = {}
    for path, identity in train + test:
        by_identity.setdefault(identity, set()).add(path.split("/")[2])
    assert by_identity == {"0": {"Al_A"}, "1": {"Bob_B"}, "2": {"Cy_C"}}  # sorted path order
    assert {identity for _, identity in test} == {"0", "1", "2"}
    assert written["public"].read_text().splitlines() == ["00000/00000.png", "00000/00001.png", "00000/00002.png"]
    files = {"root": str(tree), "private_train": str(written["private_train"]),
             "private_test": str(written["private_test"]), "public": str(written["public"]),
             "public_root": str(tmp_path / "ffhq"), "image_size": 8}  # fmt: skip
    split, _ = make_files_split(DataSection.model_validate({"source": "split_files", "split_files": files}).split_files,
                                FILES_MODE)  # fmt: skip
    assert split.num_private_classes == 3 and len(split.public.labels) == 3


def test_write_split_files_refuses_paths_a_line_cannot_hold(tmp_path):
    folder = tmp_path / "ids" / "Some One"
    folder.mkdir(parents=True)
    for i in range(2):
        Image.new("RGB", (4, 4)).save(folder / f"{i}.png")
    with pytest.raises(DataError, match="cannot contain whitespace"):
        write_split_files(tmp_path / "ids", tmp_path / "out")
