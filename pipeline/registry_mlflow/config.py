"""The ``register`` params section: registered model name, aliases, allowed regression."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from pipeline.config import Section
from pipeline.export.config import check_model_name


class RegisterSection(Section):
    """MLflow registry: aliases only (stages are deprecated). The experiment is the ``mlflow`` section's."""

    model_name: str = "calor-classifier"
    candidate_alias: str = "candidate"
    champion_alias: str = "champion"
    # Allowed regression against the champion (0 = strictly no worse).
    natural_accuracy_tolerance: float = Field(0.0, ge=0, le=1)
    worst_case_acc1_tolerance: float = Field(0.0, ge=0, le=1)

    @field_validator("model_name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        return check_model_name(value)

    @model_validator(mode="after")
    def _distinct_aliases(self) -> RegisterSection:
        if self.candidate_alias == self.champion_alias:
            raise ValueError(f"candidate_alias and champion_alias must differ, both are {self.champion_alias!r}")
        return self
