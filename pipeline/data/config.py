"""The ``data`` and ``split`` params sections: where the images come from and how they are carved.

``SplitSection`` is the split's only config: the prepare stage validates it once from params.yaml
and ``make_mi_split`` takes it as is, so there is no second set of rules to drift from this one.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from pipeline.config import Section
from pipeline.param_types import ChannelCount

ClassId = Annotated[int, Field(ge=0, strict=True)]
Count = Annotated[int, Field(ge=1, strict=True)]  # strict: true or 2.5 is not a count


class ImageFolderSection(Section):
    root: str
    split_file: str | None = None
    image_size: int = Field(64, ge=8)
    channels: ChannelCount = 3  # 1 or 3, and `true` is not 1


class SplitFilesSection(Section):
    """The literature's face protocol: split files name the images of each part (README, "Your own data").

    Lines read ``relative/path identity`` (GMI/KED-MI's ``celeba_trainset.txt`` format); the
    identity is optional in the public file. Paths are relative to ``root`` (``public_root`` for the
    public file, e.g. FFHQ in a folder of its own).
    """

    root: str
    private_train: str
    private_test: str
    public: str
    public_root: str | None = None  # null = root
    crop: int | None = Field(None, ge=8)  # centre square crop in source pixels before resizing (CelebA: 108)
    image_size: int = Field(64, ge=8)
    channels: ChannelCount = 3


SOURCES_WITH_SETTINGS = ("image_folder", "split_files")  # each is configured by the data subsection of its name


class DataSection(Section):
    source: Literal["fashion_mnist", "image_folder", "split_files"] = "fashion_mnist"
    root: str | None = None
    image_folder: ImageFolderSection | None = None
    split_files: SplitFilesSection | None = None

    @model_validator(mode="after")
    def _source_needs_settings(self) -> DataSection:
        if self.source in SOURCES_WITH_SETTINGS and getattr(self, self.source) is None:
            raise ValueError(f"source {self.source!r} needs the data.{self.source} section")
        return self


class SplitSection(Section):
    """How to carve private/public data; null class lists mean "all" / "all the others"."""

    mode: Literal["sample_disjoint", "class_disjoint", "files"] = "sample_disjoint"  # files: data.split_files decide
    private_classes: list[ClassId] | None = Field(None, min_length=1)  # null = every class
    public_classes: list[ClassId] | None = Field(None, min_length=1)  # class_disjoint; null = the others
    private_train_per_class: Count | None = None  # required unless mode is files
    private_test_per_class: Count | None = None
    public_per_class: Count | None = None
    judge_train_per_class: Count | None = None  # null = every training image of the class
    judge_test_per_class: Count | None = None  # null = every test image of the class
    seed: int = Field(0, ge=0, strict=True)

    @field_validator("private_classes", "public_classes")
    @classmethod
    def _distinct(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError(f"duplicate class ids in {value}")
        return value

    @model_validator(mode="after")
    def _counts_fit_the_mode(self) -> SplitSection:
        """Files mode takes every listed image; the sampling modes need to know how many to draw."""
        counted = ("private_train_per_class", "private_test_per_class", "public_per_class")
        optional = ("judge_train_per_class", "judge_test_per_class", "private_classes", "public_classes")
        if self.mode == "files":
            set_keys = [k for k in (*counted, *optional) if getattr(self, k) is not None]
            if set_keys:
                raise ValueError(f"{', '.join(set_keys)}: the split files decide every part in files mode; set to null")
        else:
            missing = [k for k in counted if getattr(self, k) is None]
            if missing:
                raise ValueError(f"{', '.join(missing)}: required in {self.mode} mode")
        return self

    @model_validator(mode="after")
    def _classes_fit_the_mode(self) -> SplitSection:
        if self.mode == "sample_disjoint" and self.public_classes is not None:
            raise ValueError(
                "public_classes is only used in class_disjoint mode (sample_disjoint draws public images "
                "from the private classes); set it to null"
            )
        if self.mode == "class_disjoint":
            if self.private_classes is None:
                raise ValueError("private_classes: class_disjoint mode needs an explicit list")
            overlap = sorted(set(self.private_classes) & set(self.public_classes or ()))
            if overlap:
                raise ValueError(f"public_classes: classes {overlap} are also private")
        return self
