"""The ``harden`` params section: which registered defense to apply, and its settings.

``harden.defense`` names the defense; ``harden.<defense>`` holds its settings, validated by the
schema the defense registered (``register_defense``).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from pipeline.config import parse_section
from pipeline.defenses.registry import DefenseConfig, DefenseKnowledge, get_defense


class HardenSection(BaseModel):
    """``defense`` names a registered defense; its settings live in ``harden.<defense>``.

    Extra keys are allowed (the settings of other defenses may stay in params.yaml); the chosen
    defense's own schema validates its subsection in ``defense_settings``.
    """

    model_config = ConfigDict(extra="allow", frozen=True)
    defense: str = "calor"

    def defense_settings(self) -> DefenseConfig:
        spec = get_defense(self.defense)
        return parse_section(f"harden.{self.defense}", (self.model_extra or {}).get(self.defense), spec.config_schema)

    def attacker_knowledge(self) -> DefenseKnowledge:
        """What an adaptive attacker knows about the chosen defense with these settings."""
        return self.defense_settings().attacker_knowledge()


def checkpoint_knowledge(params: dict[str, Any]) -> DefenseKnowledge:
    """What an adaptive attacker knows about the model of a checkpoint, from the params stored in it:
    its ``harden`` section's defense (a checkpoint no defense produced: nothing)."""
    harden = params.get("harden")
    if harden is None:
        return DefenseKnowledge()
    return parse_section("harden", harden, HardenSection, source="checkpoint params").attacker_knowledge()
