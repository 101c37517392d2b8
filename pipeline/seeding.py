"""Seeding: same params, same numbers.

Seeding touches only random number generators. Deterministic algorithms are the stage process's
choice, made once at its start (``pipeline.runtime.start_stage``), not a side effect of seeding.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import numpy as np
import torch


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a torch.Generator for data order and augmentation."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


@contextlib.contextmanager
def seeded_rng(seed: int) -> Iterator[None]:
    """Draw from torch's global RNG seeded with ``seed``, then put the caller's RNG state back.

    For weight inits and attack restarts that must be a function of their own seed, not of
    whatever ran before in the process, without disturbing the caller's random stream.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
