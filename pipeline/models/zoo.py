"""Registered architectures: targets and judges.

Targets: ``convnet`` (small BatchNorm CNN for 28×28 grayscale on CPU) and ``resnet18`` (torchvision
backbone for 64–112 px RGB). Judge: ``judge_net`` — a different family (residual, GroupNorm, wider,
no BatchNorm), so it shares neither architecture nor initialisation with the target.
"""

from __future__ import annotations

import torch
from torch import nn

from pipeline.models.base import Classifier, ModelConfig
from pipeline.models.heads import build_head
from pipeline.registry import Registry

ARCHITECTURES: Registry = Registry("architecture")


def _conv_bn(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


@ARCHITECTURES.register("convnet")
def convnet_features(cfg: ModelConfig) -> tuple[nn.Module, int]:
    """Two conv-BN blocks with pooling, then a 128-d embedding; ~0.2 M parameters at width 32."""
    w = cfg.width
    spatial = cfg.image_size // 4
    layers = [
        *_conv_bn(cfg.in_channels, w), *_conv_bn(w, w), nn.MaxPool2d(2),
        *_conv_bn(w, 2 * w), *_conv_bn(2 * w, 2 * w), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(2 * w * spatial * spatial, 128, bias=False),
        nn.BatchNorm1d(128), nn.ReLU(inplace=True),
    ]  # fmt: skip
    return nn.Sequential(*layers), 128


@ARCHITECTURES.register("resnet18")
def resnet18_features(cfg: ModelConfig) -> tuple[nn.Module, int]:
    """torchvision ResNet-18 without its fc layer (no pretrained weights: nothing is downloaded)."""
    from torchvision.models import resnet18

    net = resnet18(weights=None, num_classes=cfg.num_classes)
    if cfg.in_channels != 3:
        net.conv1 = nn.Conv2d(cfg.in_channels, 64, 7, stride=2, padding=3, bias=False)
    feature_dim = net.fc.in_features
    net.fc = nn.Identity()
    return net, feature_dim


class _ResidualGN(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.GroupNorm(8, cout), nn.SiLU(),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.GroupNorm(8, cout),
        )  # fmt: skip
        self.skip = (
            nn.Identity() if cin == cout and stride == 1
            else nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.GroupNorm(8, cout))
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.silu(self.body(x) + self.skip(x))


@ARCHITECTURES.register("judge_net")
def judge_features(cfg: ModelConfig) -> tuple[nn.Module, int]:
    """Residual GroupNorm/SiLU network with global pooling: a different family from ``convnet``.

    Only the stem sees full resolution (the blocks run at 1/2 and 1/4), which keeps it cheap on CPU.
    """
    w = cfg.width
    net = nn.Sequential(
        nn.Conv2d(cfg.in_channels, w, 3, padding=1, bias=False), nn.GroupNorm(8, w), nn.SiLU(),
        _ResidualGN(w, w, 2), _ResidualGN(w, 2 * w, 2), _ResidualGN(2 * w, 4 * w, 1),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
    )  # fmt: skip
    return net, 4 * w


def create_model(cfg: ModelConfig) -> Classifier:
    features, feature_dim = ARCHITECTURES.get(cfg.arch)(cfg)
    head = build_head(cfg.head, feature_dim, cfg.num_classes)
    return Classifier(features, head, feature_dim, cfg)


def list_architectures() -> list[str]:
    return ARCHITECTURES.names()
