"""Defenses against model inversion, looked up by name (importing this fills the registry)."""

from pipeline.defenses import (
    bido,  # noqa: F401  (registers "bido")
    calor,  # noqa: F401  (registers "calor")
    dpsgd,  # noqa: F401  (registers "dpsgd")
    mid,  # noqa: F401  (registers "mid")
    negls,  # noqa: F401  (registers "negls")
    plain_finetune,  # noqa: F401  (registers "plain_finetune")
    tldmi,  # noqa: F401  (registers "tldmi")
)
from pipeline.defenses.config import HardenSection, checkpoint_knowledge
from pipeline.defenses.registry import (
    DefenseConfig,
    DefenseData,
    DefenseKnowledge,
    DefenseResult,
    get_defense,
    list_defenses,
)

__all__ = [
    "DefenseConfig", "DefenseData", "DefenseKnowledge", "DefenseResult", "HardenSection", "checkpoint_knowledge",
    "get_defense", "list_defenses",
]  # fmt: skip
