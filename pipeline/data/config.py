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


class DataSection(Section):
    source: Literal["fashion_mnist", "image_folder"] = "fashion_mnist"
    root: str | None = None
    image_folder: ImageFolderSection | None = None

    @model_validator(mode="after")
    def _folder_needs_settings(self) -> DataSection:
        if self.source == "image_folder" and self.image_folder is None:
            raise ValueError("source 'image_folder' needs the data.image_folder section")
        return self


class SplitSection(Section):
    """How to carve private/public data; null class lists mean "all" / "all the others"."""

    mode: Literal["sample_disjoint", "class_disjoint"] = "sample_disjoint"
    private_classes: list[ClassId] | None = Field(None, min_length=1)  # null = every class
    public_classes: list[ClassId] | None = Field(None, min_length=1)  # class_disjoint; null = the others
    private_train_per_class: Count
    private_test_per_class: Count
    public_per_class: Count
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
