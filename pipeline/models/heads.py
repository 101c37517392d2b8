"""Classification heads: the plain linear head and CALoR's low-rank head."""

from __future__ import annotations

from typing import Literal

from torch import nn

from pipeline.models.base import HeadConfig
from pipeline.registry import Registry

# The choices params.yaml may name (harden.calor.low_rank.activation); ACTIVATIONS registers exactly
# these (tests/core/test_calor.py checks), so a typo fails when params load, not when the head is built.
HeadActivation = Literal["tanh", "relu", "none"]
ACTIVATIONS: Registry[type[nn.Module]] = Registry("head activation")
ACTIVATIONS.register("tanh")(nn.Tanh)
ACTIVATIONS.register("relu")(nn.ReLU)
ACTIVATIONS.register("none")(nn.Identity)


class LowRankHead(nn.Sequential):
    """BatchNorm1d(d) → Linear(d, r) → activation → Linear(r, C).

    Paper: Yu et al., "CALoR: Towards Comprehensive Model Inversion Defense", arXiv 2410.05814.
    The rank-r bottleneck limits what the head can encode about private classes; the saturating
    tanh starves a gradient-based attacker. Named children let attacks reach ``activation``.
    """

    def __init__(self, feature_dim: int, num_classes: int, rank: int, activation: str = "tanh"):
        if not 1 <= rank <= feature_dim:
            raise ValueError(f"head.rank must satisfy 1 <= r <= d = {feature_dim}, got {rank}")
        super().__init__()
        self.add_module("norm", nn.BatchNorm1d(feature_dim))
        self.add_module("down", nn.Linear(feature_dim, rank))
        self.add_module("activation", ACTIVATIONS.get(activation)())
        self.add_module("up", nn.Linear(rank, num_classes))
        self.rank = rank


def build_head(config: HeadConfig, feature_dim: int, num_classes: int) -> nn.Module:
    if config.kind == "linear":
        return nn.Linear(feature_dim, num_classes)
    if config.kind == "low_rank":
        if config.rank is None:
            raise ValueError("head.rank is required for a low_rank head")
        return LowRankHead(feature_dim, num_classes, config.rank, config.activation)
    if config.kind == "vib":
        from pipeline.models.vib_head import VIBHead

        return VIBHead(feature_dim, num_classes, config.rank or feature_dim // 2)
    raise ValueError(f"head.kind must be 'linear', 'low_rank' or 'vib', got {config.kind!r}")
