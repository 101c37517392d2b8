"""Defenses against model inversion, looked up by name (importing this fills the registry)."""

from pipeline.defenses import calor  # noqa: F401  (registers "calor")
from pipeline.defenses.registry import DefenseData, DefenseResult, get_defense, list_defenses

__all__ = ["DefenseData", "DefenseResult", "get_defense", "list_defenses"]
