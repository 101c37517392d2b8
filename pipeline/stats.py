"""Confidence intervals for the gate: a binomial proportion and a difference of two proportions.

- ``wilson``: the Wilson score interval for k successes in n trials (E. B. Wilson, JASA 1927). Unlike
  the Wald interval it stays inside [0, 1] and does not collapse to a point at k = 0 or k = n.
- ``newcombe``: Newcombe's hybrid score interval for p1 - p2 from two *independent* samples, built
  from the two Wilson intervals (R. G. Newcombe, "Interval estimation for the difference between
  independent proportions: comparison of eleven methods", Statistics in Medicine 1998, method 10).

Both are two-sided at ``confidence`` (e.g. 0.95) and take counts, not rates: the gate pools every
judged reconstruction over attack seeds, so n is the number of reconstructions.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

WILSON = "wilson"
NEWCOMBE = "newcombe"


@dataclass(frozen=True)
class Interval:
    """A point estimate with its two-sided confidence interval and the method that produced it."""

    value: float
    lower: float
    upper: float
    method: str
    confidence: float

    def as_dict(self) -> dict[str, float]:
        return {"value": self.value, "lower": self.lower, "upper": self.upper}


def _count(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an integer count, got {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer count, got {value!r}") from None


def _z(confidence: float) -> float:
    if isinstance(confidence, bool) or not isinstance(confidence, int | float) or not 0 < confidence < 1:
        raise ValueError(f"confidence must be a number in (0, 1), got {confidence!r}")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson(k: int, n: int, confidence: float = 0.95) -> Interval:
    """Wilson score interval for the proportion k / n.

    Raises:
        ValueError: n <= 0, k outside [0, n], a non-integer count, or confidence outside (0, 1).
    """
    k, n = _count("k", k), _count("n", n)
    if n <= 0:
        raise ValueError(f"n must be > 0, got {n}")
    if not 0 <= k <= n:
        raise ValueError(f"k must be in [0, n] = [0, {n}], got {k}")
    z = _z(confidence)
    p = k / n
    z2n = z * z / n
    centre = (p + z2n / 2) / (1 + z2n)
    half = z / (1 + z2n) * math.sqrt(p * (1 - p) / n + z2n / (4 * n))
    # k = 0 and k = n give exactly 0 and 1 in exact arithmetic; clip the rounding residue
    lower = 0.0 if k == 0 else max(0.0, centre - half)
    upper = 1.0 if k == n else min(1.0, centre + half)
    return Interval(p, lower, upper, WILSON, confidence)


def newcombe(k1: int, n1: int, k2: int, n2: int, confidence: float = 0.95) -> Interval:
    """Newcombe's hybrid score interval (method 10) for p1 - p2 = k1/n1 - k2/n2, independent samples.

    With Wilson intervals (l1, u1) for p1 and (l2, u2) for p2 and d = p1 - p2:
    lower = d - sqrt((p1 - l1)^2 + (u2 - p2)^2), upper = d + sqrt((u1 - p1)^2 + (p2 - l2)^2).

    Raises:
        ValueError: as ``wilson``, for either sample.
    """
    a, b = wilson(k1, n1, confidence), wilson(k2, n2, confidence)
    d = a.value - b.value
    lower = d - math.hypot(a.value - a.lower, b.upper - b.value)
    upper = d + math.hypot(a.upper - a.value, b.value - b.lower)
    return Interval(d, max(-1.0, lower), min(1.0, upper), NEWCOMBE, confidence)
