"""A target's features started from a local weights file: what loads, what is refused, what is recorded."""

from __future__ import annotations

import pytest
import torch
from torchvision.models import resnet18

from pipeline.checkpoint import save_checkpoint
from pipeline.io import sha256_file
from pipeline.models import ModelConfig, ModelSection, create_model
from pipeline.models.pretrained import initialise_features


def _target(arch: str = "resnet18", channels: int = 3, classes: int = 7):
    return create_model(ModelConfig(arch=arch, num_classes=classes, in_channels=channels, image_size=32))


def test_torchvision_weights_fill_the_features_and_the_fc_layer_is_dropped(tmp_path):
    torch.manual_seed(0)
    source = resnet18(weights=None, num_classes=1000)  # an ImageNet-shaped file, as users download once
    path = tmp_path / "resnet18.pth"
    torch.save(source.state_dict(), path)
    model = _target()
    assert not torch.equal(model.features.conv1.weight, source.conv1.weight)
    info = initialise_features(model, path)
    for key, value in source.state_dict().items():
        if not key.startswith("fc."):
            assert torch.equal(model.features.state_dict()[key], value), key
    assert model.head.weight.shape[0] == 7  # the private classes' head is new
    assert info == {"path": str(path), "sha256": sha256_file(path), "tensors": len(source.state_dict()) - 2}


def test_one_of_our_checkpoints_and_a_wrapped_state_dict_load_too(tmp_path):
    donor = _target(classes=3)
    save_checkpoint(tmp_path / "ours.pt", donor, {})
    torch.save({"state_dict": {f"{k}": v for k, v in donor.features.state_dict().items()}}, tmp_path / "wrapped.pt")
    for name in ("ours.pt", "wrapped.pt"):
        model = _target()
        initialise_features(model, tmp_path / name)
        assert torch.equal(model.features.layer4[1].conv2.weight, donor.features.layer4[1].conv2.weight), name


def test_a_file_that_does_not_fit_is_refused_naming_file_and_key(tmp_path):
    grey = resnet18(weights=None)
    grey.conv1 = torch.nn.Conv2d(1, 64, 7, stride=2, padding=3, bias=False)
    torch.save(grey.state_dict(), tmp_path / "grey.pth")
    with pytest.raises(ValueError, match=r"grey.pth: conv1.weight has shape \(64, 1, 7, 7\), the model's is \(64, 3"):
        initialise_features(_target(), tmp_path / "grey.pth")
    torch.save(_target("convnet", channels=3).features.state_dict(), tmp_path / "convnet.pth")
    with pytest.raises(ValueError, match=r"convnet.pth: does not fit the resnet18 features: missing \['bn1.bias'"):
        initialise_features(_target(), tmp_path / "convnet.pth")
    torch.save([1, 2], tmp_path / "list.pth")
    with pytest.raises(ValueError, match=r"list.pth: not a state_dict"):
        initialise_features(_target(), tmp_path / "list.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"junk.pth: not a loadable weights file"):
        initialise_features(_target(), tmp_path / "junk.pth")
    with pytest.raises(
        FileNotFoundError, match=r"absent.pth: init_checkpoint not found \(weights are never downloaded"
    ):
        initialise_features(_target(), tmp_path / "absent.pth")


def test_the_setting_stays_out_of_dumps_so_default_checkpoints_keep_their_hashes():
    plain = ModelSection(arch="resnet18", width=8)
    started = ModelSection(arch="resnet18", width=8, init_checkpoint="weights/resnet18.pth")
    assert plain.model_dump() == started.model_dump() == {"arch": "resnet18", "width": 8}
    assert started.init_checkpoint == "weights/resnet18.pth"
