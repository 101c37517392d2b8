"""The classifier contract every target and judge follows.

Attacks and defenses need the feature extractor and the classification head separately (CALoR
swaps the head, the feature-space attack stops before it), so a classifier is always
``head(features(x))`` with ``features: (B, C, H, W) -> (B, d)`` and ``head: (B, d) -> (B, classes)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn


@dataclass(frozen=True)
class HeadConfig:
    """``linear`` is the plain Linear(d, C); ``low_rank`` is CALoR's BN → Linear(d, r) → act → Linear(r, C)."""

    kind: str = "linear"
    rank: int | None = None
    activation: str = "tanh"


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a classifier from a checkpoint's state_dict."""

    arch: str
    num_classes: int
    in_channels: int = 1
    image_size: int = 28
    width: int = 32
    head: HeadConfig = field(default_factory=HeadConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        data = dict(data)
        data["head"] = HeadConfig(**data.get("head", {}))
        return cls(**data)


class Classifier(nn.Module):
    """``head(features(x))``; ``config`` travels with the weights into every checkpoint."""

    def __init__(self, features: nn.Module, head: nn.Module, feature_dim: int, config: ModelConfig):
        super().__init__()
        self.features = features
        self.head = head
        self.feature_dim = feature_dim
        self.config = config

    @property
    def num_classes(self) -> int:
        return self.config.num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
