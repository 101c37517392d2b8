"""params.yaml ``runtime``: the device every stage computes on, and a clear refusal where it is absent.

No GPU exists on the machines these tests run on: CUDA's presence is mocked (``torch.cuda``'s
answers) to test how a device is chosen; what runs on a GPU is checked on a GPU (bench/gpu_checks.py).
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
import torch
import yaml

from pipeline.attacks.base import AttackResult
from pipeline.config import parse_section
from pipeline.runtime import (
    CPU,
    DeviceUnavailableError,
    Runtime,
    RuntimeSection,
    current_runtime,
    on_device,
    resolve_device,
    start_stage,
)

REPO = Path(__file__).resolve().parents[2]
STAGES = sorted(p.stem for p in (REPO / "stages").glob("*.py") if p.stem != "__init__")


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture
def two_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


def test_auto_is_the_cpu_without_cuda_and_cpu_changes_nothing(no_cuda):
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    runtime = Runtime(torch.device("cpu"), amp="bf16", channels_last=True)
    x = torch.rand(2, 1, 4, 4)
    assert runtime.batch(x) is x  # no copy, no layout change
    assert runtime.grad_scaler() is None
    with runtime.autocast():
        assert (x @ x.transpose(-1, -2)).dtype == torch.float32  # amp is a CUDA switch: off on the CPU


def test_auto_takes_the_gpu_of_the_local_rank(two_gpus):
    assert resolve_device("auto") == torch.device("cuda", 0)
    assert resolve_device("cuda", local_rank=1) == torch.device("cuda", 1)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)


def test_a_gpu_index_past_the_visible_ones_is_named(two_gpus):
    with pytest.raises(DeviceUnavailableError, match=r"cuda:2.*asks for GPU 2, but only 2 are visible"):
        resolve_device("cuda:2")


def test_cuda_without_cuda_is_an_error_naming_the_file_and_key(no_cuda):
    with pytest.raises(DeviceUnavailableError, match=r"my.yaml: runtime.device is 'cuda'.*no usable CUDA"):
        resolve_device("cuda", source="my.yaml")


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "", "CUDA"])
def test_unknown_devices_are_refused_when_params_load(device):
    with pytest.raises(ValueError, match=r"runtime\.device"):
        parse_section("runtime", {"device": device}, RuntimeSection, "params.yaml")


def test_fp16_scales_the_loss_and_bf16_does_not(two_gpus):
    cuda = torch.device("cuda", 0)
    assert Runtime(cuda, amp="bf16").grad_scaler() is None
    assert Runtime(cuda, amp="fp32").grad_scaler() is None
    assert isinstance(Runtime(cuda, amp="fp16").grad_scaler(), torch.amp.GradScaler)


def test_new_tensors_stay_on_the_cpu_runtime():
    with on_device(CPU):
        assert torch.zeros(1).device.type == "cpu"


def test_start_stage_resolves_the_runtime_section(tmp_path, no_cuda):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"runtime": {"device": "auto", "channels_last": True}}))
    runtime = start_stage(params)
    assert runtime == current_runtime() == Runtime(torch.device("cpu"), "fp32", True, False)
    params.write_text(yaml.safe_dump({"mlflow": {}}))  # no runtime section: the defaults
    assert start_stage(params) == CPU


def test_attack_results_come_back_on_the_cpu():
    result = AttackResult(torch.zeros(2, 1, 4, 4), torch.zeros(2, dtype=torch.int64), torch.zeros(2), [])
    assert result.on_cpu() is result


def _entry(stage: str):
    return importlib.import_module(f"stages.{stage}").main


def _required_args(stage: str, params: Path, capsys) -> list[str]:
    """Every required option of the stage's command line, with a placeholder value (from argparse's own error)."""
    with pytest.raises(SystemExit):
        _entry(stage)(["--params", str(params)])
    message = capsys.readouterr().err
    found = re.search(r"the following arguments are required: (.*)", message)
    names = found.group(1).split(", ") if found else []
    return [part for name in names for part in (name.split("/")[0], "unused")]


@pytest.mark.parametrize("stage", STAGES)
def test_every_stage_refuses_cuda_where_there_is_none_before_any_work(stage, tmp_path, no_cuda, capsys):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"runtime": {"device": "cuda"}}))
    args = ["--params", str(params), *_required_args(stage, params, capsys)]
    with pytest.raises(SystemExit) as stopped:
        _entry(stage)(args)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert f"{params}: runtime.device is 'cuda' but this machine has no usable CUDA device" in err
    assert list(tmp_path.iterdir()) == [params]  # nothing written, no folder made
