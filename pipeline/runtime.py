"""How a stage process runs torch: its thread count and deterministic algorithms, chosen once at its start.

Every stage parses its command line with ``stage_utils.stage_parser``, and parsing calls
``start_stage`` before the stage does anything else:

- threads: ``CALOR_NUM_THREADS`` (a positive integer) when set, else torch's own default (one
  intra-op thread per core). The GAN trainers (the prior, the target GANs) run their loops on
  ``CALOR_NUM_THREADS`` threads too when it is set, else on ``GAN_THREADS``. The thread count is an
  execution setting, not a param: DVC does not re-run a stage for it, although float results may
  differ in their last bits across thread counts, as they do across machines.
- deterministic algorithms: on (``warn_only``: an op without a deterministic implementation warns)
  for the whole stage. It is the stage's choice, made here; seeding (``pipeline.seeding``) does not
  switch it.

This module is the only reader of ``CALOR_NUM_THREADS``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping

import torch

THREADS_ENV = "CALOR_NUM_THREADS"
# Tiny GANs on a shared two-core machine: one thread ran a prior training step in 44 ms against
# 129 ms with two contended threads.
GAN_THREADS = 1


def env_threads(environ: Mapping[str, str] | None = None) -> int | None:
    """``CALOR_NUM_THREADS`` as a positive int, or None when it is unset or empty."""
    raw = (os.environ if environ is None else environ).get(THREADS_ENV, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{THREADS_ENV} must be a positive integer (intra-op threads), got {raw!r}")
    return int(raw)


def gan_threads(num_threads: int | None = None) -> int:
    """The threads a GAN training loop runs on: ``num_threads`` if given, else the env, else GAN_THREADS."""
    if num_threads is not None:
        return num_threads
    return env_threads() or GAN_THREADS


@contextlib.contextmanager
def torch_threads(num_threads: int | None) -> Iterator[None]:
    """Set torch's intra-op threads for the block (None keeps the current setting), then restore."""
    if num_threads is not None and (isinstance(num_threads, bool) or not isinstance(num_threads, int)
                                    or num_threads < 1):  # fmt: skip
        raise ValueError(f"num_threads must be a positive int or None, got {num_threads!r}")
    previous = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def start_stage() -> None:
    """Set this stage process's thread count (from the env) and turn deterministic algorithms on."""
    threads = env_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
