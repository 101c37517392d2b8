"""MID's variational information bottleneck head: features → q(z|x) = N(μ, σ²) → Linear(K, C).

Paper: Wang, Zhang, Jia, Wang, "Improving Robustness to Model Inversion Attacks via Mutual
Information Regularization", AAAI 2021 (MID). The head samples z in train mode (the noise is what
limits I(x; z)) and uses the mean μ in eval mode, so a released model is deterministic.
Kept free of training state (no cached KL on the module): the MID defense reads μ and σ through
a forward hook on ``encoder`` (see ``posterior``), so the model deep-copies and exports cleanly.

Checkpoints store ``HeadConfig(kind="vib", rank=K)``; ``load_checkpoint`` rebuilds the head through
``pipeline.models.heads.build_head`` (tests/defenses/test_defense_registry.py round-trips it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# softplus(s − 5) starts σ near 0.007: training begins close to the deterministic head (MID code).
STD_SHIFT = 5.0


class VIBHead(nn.Module):
    """Linear(d, 2K) → (μ, σ) → z = μ + σ·ε (train) or μ (eval) → Linear(K, C)."""

    def __init__(self, feature_dim: int, num_classes: int, bottleneck_dim: int):
        if bottleneck_dim < 1:
            raise ValueError(f"head.rank (VIB bottleneck dim K) must be >= 1, got {bottleneck_dim}")
        super().__init__()
        self.encoder = nn.Linear(feature_dim, 2 * bottleneck_dim)
        self.classifier = nn.Linear(bottleneck_dim, num_classes)
        self.bottleneck_dim = bottleneck_dim

    @staticmethod
    def posterior(statistics: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Split the encoder output (B, 2K) into μ (B, K) and σ = softplus(s − 5) > 0 (B, K)."""
        k = statistics.shape[1] // 2
        return statistics[:, :k], F.softplus(statistics[:, k:] - STD_SHIFT)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        mu, std = self.posterior(self.encoder(features))
        z = mu + std * torch.randn_like(std) if self.training else mu
        return self.classifier(z)


def kl_to_standard_normal(mu: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Batch mean of KL(N(μ, σ²) ‖ N(0, I)) = ½ Σ_k (μ² + σ² − 2 log σ − 1); always ≥ 0."""
    return 0.5 * (mu.pow(2) + std.pow(2) - 2 * std.log() - 1).sum(1).mean()
