"""Checkpoints round-trip through torch.load(weights_only=True) and refuse bad files clearly."""

import pytest
import torch

from pipeline.checkpoint import load_checkpoint, save_checkpoint
from pipeline.models import HeadConfig, ModelConfig, create_model


@pytest.mark.parametrize("head", [HeadConfig(), HeadConfig(kind="low_rank", rank=3, activation="relu")])
def test_round_trip_restores_weights_config_and_params(tmp_path, head):
    torch.manual_seed(0)
    model = create_model(ModelConfig(arch="convnet", num_classes=10, width=8, head=head)).eval()
    path = tmp_path / "model.pt"
    save_checkpoint(path, model, {"stage": {"lr": 0.1}}, extra={"defense": "calor"})
    loaded, meta = load_checkpoint(path)
    assert loaded.config == model.config
    assert meta["params"] == {"stage": {"lr": 0.1}} and meta["extra"] == {"defense": "calor"}
    x = torch.rand(4, 1, 28, 28)
    assert torch.equal(loaded(x), model(x))
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*"))


def test_checkpoint_loads_with_weights_only(tmp_path):
    path = tmp_path / "model.pt"
    save_checkpoint(path, create_model(ModelConfig(arch="judge_net", num_classes=3, width=8)), {})
    payload = torch.load(path, weights_only=True)
    assert set(payload) >= {"format_version", "model_config", "state_dict", "params"}


def test_corrupt_and_missing_checkpoints_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.pt"):
        load_checkpoint(tmp_path / "absent.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="bad.pt"):
        load_checkpoint(bad)


def test_a_failed_save_leaves_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "model.pt"
    model = create_model(ModelConfig(arch="convnet", num_classes=10, width=8))
    save_checkpoint(path, model, {"v": 1})
    before = path.read_bytes()

    def explode(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", explode)
    with pytest.raises(OSError):
        save_checkpoint(path, model, {"v": 2})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]
