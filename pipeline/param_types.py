"""Field types for params sections where pydantic's strict mode alone still coerces.

Imports nothing from ``pipeline`` so the config base layer can use it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict

# What every params value gets (pipeline.config.Section; attack params in pipeline.attacks.registry):
# no coercion (`true` is not 1, "0.1" is not 0.1; an int still fills a float field) and finite floats.
STRICT_PARAMS = ConfigDict(strict=True, allow_inf_nan=False)


def _exact_int(value: Any) -> Any:
    """Refuse ``true`` and ``3.0``: a Literal of ints matches them by equality, even in strict mode."""
    if isinstance(value, bool | float):
        raise ValueError(f"expected an integer, got {type(value).__name__} {value!r}")
    return value


ChannelCount = Annotated[Literal[1, 3], BeforeValidator(_exact_int)]
