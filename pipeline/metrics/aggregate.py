"""Aggregation over seeds: every reported number comes with its spread and count."""

from __future__ import annotations

import math
from collections.abc import Sequence


def mean_std(values: Sequence[float]) -> dict[str, float | int]:
    """``{"mean", "std", "n"}`` with the sample standard deviation (ddof = 1; 0.0 for a single value)."""
    data = [float(v) for v in values]
    if not data:
        raise ValueError("values must hold at least one number, got none")
    if any(math.isnan(v) for v in data):
        raise ValueError(f"values must not contain NaN, got {data}")
    mean = math.fsum(data) / len(data)
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in data) / (len(data) - 1)) if len(data) > 1 else 0.0
    return {"mean": mean, "std": std, "n": len(data)}
