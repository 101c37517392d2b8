"""The ``model`` subsection of a classifier stage: a registered architecture and its width."""

from __future__ import annotations

from pydantic import Field, model_validator

from pipeline.config import Section
from pipeline.models.zoo import list_architectures


class ModelSection(Section):
    arch: str = "convnet"
    width: int = Field(32, ge=8)
    # A local weights file for the features (pipeline.models.pretrained); null = random initialisation.
    # Left out of dumps (exclude) so checkpoints without it keep their hashes; the stage's report and
    # checkpoint record it with its sha256 instead.
    init_checkpoint: str | None = Field(None, exclude=True)

    @model_validator(mode="after")
    def _known_arch(self) -> ModelSection:
        if self.arch not in list_architectures():
            raise ValueError(f"arch {self.arch!r} is not one of {list_architectures()}")
        return self
