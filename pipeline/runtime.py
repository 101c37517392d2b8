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
- the device (params.yaml ``runtime``): resolved once, with a clear error where CUDA is asked for
  and absent; library code asks ``current_runtime()`` where to put tensors. Under ``torchrun``
  the process also joins the process group (``pipeline.distributed``).

This module is the only reader of ``CALOR_NUM_THREADS``.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

import torch
from pydantic import field_validator

from pipeline.config import Section, parse_section, read_params
from pipeline.distributed import init_from_env, local_rank

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


def start_stage(params: str | os.PathLike | None = None) -> Runtime:
    """Set this stage process's threads (env) and deterministic algorithms; resolve its ``runtime``.

    With ``params``, the ``runtime`` section is read (absent: the defaults), the device checked
    (a stage asked for CUDA on a machine without it stops here, before reading any data), and under
    ``torchrun`` the process group joined (``pipeline.distributed``).
    """
    global _current
    threads = env_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    if params is None:
        return _current
    raw = read_params(params).get("runtime", {})  # absent: the defaults
    section = parse_section("runtime", raw, RuntimeSection, source=str(params))
    _current = resolve_runtime(section, local_rank(), str(params))
    init_from_env(_current.device)
    return _current


# --- where tensors live: the ``runtime`` section of params.yaml -------------------------------------


class DeviceUnavailableError(RuntimeError):
    """params.yaml asks for a device this machine does not have."""


class RuntimeSection(Section):
    """``runtime``: the device every stage computes on and the speed switches that are safe on it.

    ``device``: ``auto`` (CUDA when torch sees a GPU, else the CPU), ``cpu``, ``cuda`` or ``cuda:N``.
    ``amp``: ``fp32`` (none), or autocast for forward passes on CUDA (``bf16``; ``fp16`` with a
    gradient scaler); ignored on the CPU, where it would only change numbers. (Not ``off``: DVC's
    ``-S`` rewrite of params.yaml turns a bare off into YAML's false.) ``channels_last``: NHWC convolutions on CUDA.
    ``compile``: ``torch.compile`` the classifier during training. With the defaults on a CPU every
    stage computes exactly what it did before this section existed.
    """

    device: str = "auto"
    amp: Literal["fp32", "bf16", "fp16"] = "fp32"
    channels_last: bool = False
    compile: bool = False

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        if value in ("auto", "cpu", "cuda") or re.fullmatch(r"cuda:\d+", value):
            return value
        raise ValueError(f"must be auto, cpu, cuda or cuda:N, got {value!r}")


@dataclass(frozen=True)
class Runtime:
    """What the stage process resolved from ``runtime``: a concrete device and the switches in force."""

    device: torch.device = torch.device("cpu")
    amp: str = "fp32"
    channels_last: bool = False
    compile: bool = False

    @property
    def on_cuda(self) -> bool:
        return self.device.type == "cuda"

    def autocast(self) -> contextlib.AbstractContextManager:
        """Mixed precision for a forward pass where it is on (CUDA only), else a no-op."""
        if not self.on_cuda or self.amp == "fp32":
            return contextlib.nullcontext()
        return torch.autocast("cuda", dtype=torch.bfloat16 if self.amp == "bf16" else torch.float16)

    def grad_scaler(self) -> torch.amp.GradScaler | None:
        """fp16 needs loss scaling against underflowing gradients; bf16 and fp32 do not."""
        return torch.amp.GradScaler("cuda") if self.on_cuda and self.amp == "fp16" else None

    def prepare(self, model: torch.nn.Module) -> torch.nn.Module:
        """``model`` moved to the device (NHWC where asked, on CUDA); the same object, for in-place training."""
        model.to(self.device)
        if self.on_cuda and self.channels_last:
            model.to(memory_format=torch.channels_last)
        return model

    def batch(self, x: torch.Tensor) -> torch.Tensor:
        """A batch moved to the device in the layout the model expects."""
        x = x.to(self.device, non_blocking=True)
        if self.on_cuda and self.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x


CPU = Runtime()
_current = CPU


def resolve_device(spec: str, local_rank: int = 0, source: str = "params.yaml") -> torch.device:
    """``runtime.device`` as a torch.device; a clear error where CUDA is asked for and absent.

    Under ``torchrun`` with CUDA, each process takes the GPU of its local rank (``cuda`` → ``cuda:<LOCAL_RANK>``).
    """
    if spec == "cpu" or (spec == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        built = torch.version.cuda or "no CUDA"
        raise DeviceUnavailableError(
            f"{source}: runtime.device is {spec!r} but this machine has no usable CUDA device "
            f"(torch {torch.__version__}, built with {built}; torch.cuda.is_available() is False). "
            "Set runtime.device to auto or cpu, or run on a GPU machine."
        )
    index = int(spec.split(":")[1]) if ":" in spec else local_rank
    if index >= torch.cuda.device_count():
        raise DeviceUnavailableError(
            f"{source}: runtime.device {spec!r} (local rank {local_rank}) asks for GPU {index}, "
            f"but only {torch.cuda.device_count()} are visible"
        )
    return torch.device("cuda", index)


def resolve_runtime(section: RuntimeSection, local_rank: int = 0, source: str = "params.yaml") -> Runtime:
    return Runtime(resolve_device(section.device, local_rank, source), section.amp, section.channels_last,
                   section.compile)  # fmt: skip


def current_runtime() -> Runtime:
    """The runtime the stage process started with (the CPU defaults outside a stage)."""
    return _current


@contextlib.contextmanager
def use_runtime(runtime: Runtime) -> Iterator[Runtime]:
    """Run a block under ``runtime`` (tests, notebooks); the previous one is restored after."""
    global _current
    previous, _current = _current, runtime
    try:
        yield runtime
    finally:
        _current = previous


def model_device(model: torch.nn.Module) -> torch.device:
    """Where ``model``'s weights are (the runtime's device once a stage has moved it; else the CPU)."""
    return next(model.parameters(), torch.empty(0)).device


def on_device(runtime: Runtime | None = None) -> contextlib.AbstractContextManager:
    """New tensors default to the runtime's device inside the block; on the CPU nothing changes."""
    runtime = runtime or _current
    return torch.device(runtime.device) if runtime.on_cuda else contextlib.nullcontext()
