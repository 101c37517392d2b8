"""A stage's torch runtime: threads from CALOR_NUM_THREADS and deterministic algorithms, set at its start."""

from __future__ import annotations

import contextlib
import re
import runpy
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from pipeline.runtime import GAN_THREADS, THREADS_ENV, env_threads, gan_threads, start_stage, torch_threads
from pipeline.stage_utils import stage_parser


@contextlib.contextmanager
def torch_state_restored() -> Iterator[None]:
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)


def test_threads_come_from_the_env_or_are_left_alone():
    assert env_threads({}) is None
    assert env_threads({THREADS_ENV: " "}) is None
    assert env_threads({THREADS_ENV: "3"}) == 3
    for bad in ("0", "-2", "two", "1.5"):
        with pytest.raises(ValueError, match=rf"{THREADS_ENV} must be a positive integer.*{bad!r}"):
            env_threads({THREADS_ENV: bad})


@pytest.mark.parametrize("env,expected", [(None, None), ("3", 3)])
def test_parsing_a_stage_command_line_starts_the_stage(monkeypatch, env, expected):
    """Every stage parses its arguments with stage_parser: threads from the env, determinism on."""
    if env is None:
        monkeypatch.delenv(THREADS_ENV, raising=False)
    else:
        monkeypatch.setenv(THREADS_ENV, env)
    with torch_state_restored():
        torch.set_num_threads(2)
        torch.use_deterministic_algorithms(False)
        args = stage_parser("a stage", "data").parse_args(["--data", "d"])
        assert args.data == "d"
        assert torch.get_num_threads() == (expected or 2)  # unset: torch's own count is left alone
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled()


def test_a_bad_thread_count_stops_the_stage_before_it_works(monkeypatch):
    monkeypatch.setenv(THREADS_ENV, "many")
    with torch_state_restored(), pytest.raises(ValueError, match=THREADS_ENV):
        start_stage()


def test_gan_loops_use_the_env_else_one_thread_and_restore_the_count(monkeypatch):
    monkeypatch.delenv(THREADS_ENV, raising=False)
    assert gan_threads() == GAN_THREADS == 1
    assert gan_threads(4) == 4
    monkeypatch.setenv(THREADS_ENV, "2")
    assert gan_threads() == 2
    with torch_state_restored():
        torch.set_num_threads(3)
        with torch_threads(gan_threads()):
            assert torch.get_num_threads() == 2
        assert torch.get_num_threads() == 3
    with pytest.raises(ValueError, match="num_threads"):
        with torch_threads(0):
            pass


class Started(Exception):
    """Raised by a stand-in for start_stage: the stage got there before doing any work."""


def dvc_commands() -> list[str]:
    """Every stage command of every dvc.yaml, with each ``${...}`` of a foreach template set to 0."""
    import yaml

    repo = Path(__file__).resolve().parents[2]
    commands = []
    for dvc_yaml in [repo / "dvc.yaml", *sorted(repo.glob("*/dvc.yaml"))]:
        for stage in yaml.safe_load(dvc_yaml.read_text())["stages"].values():
            commands.append(re.sub(r"\$\{[^}]*\}", "0", stage.get("do", stage)["cmd"]))
    return commands


@pytest.mark.filterwarnings("ignore:.*found in sys.modules:RuntimeWarning")  # runpy: already imported
@pytest.mark.parametrize("command", dvc_commands())
def test_every_dvc_stage_starts_through_start_stage(monkeypatch, command):
    """`python -m stages.X ...` as dvc.yaml runs it: start_stage comes before any work (here: raises)."""
    words = shlex.split(command)
    assert words[:2] == ["python", "-m"], command

    def started(*_params) -> None:
        raise Started

    monkeypatch.setattr("pipeline.stage_utils.start_stage", started)
    monkeypatch.setattr(sys, "argv", [words[2], *words[3:]])
    with pytest.raises(Started):
        runpy.run_module(words[2], run_name="__main__")
