"""Suite-wide fixtures."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny nets on 2 shared cores: one intra-op thread beats two contended ones. A stage run in a
    test (pipeline.runtime.start_stage) may change the threads, deterministic algorithms and the
    process's runtime (device): all are put back after each module."""
    from pipeline.runtime import current_runtime, use_runtime

    previous = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.set_num_threads(1)
    with use_runtime(current_runtime()):  # start_stage may set another; this puts the module's back
        yield
    torch.set_num_threads(previous)
    torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
