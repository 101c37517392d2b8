"""Identity losses: how an attack scores "this image is class y" from the target's logits.

Each factory returns a function ``(logits (B, C), labels (B,)) -> per-sample loss (B,)``; lower
means more class-y. Defenses that saturate one loss (softmax CE) often fail against another, so
gates take the worst case over losses.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from pipeline.registry import Registry

IdentityLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
IDENTITY_LOSSES: Registry[Callable[..., IdentityLoss]] = Registry("identity loss")


def _true_logit(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return logits.gather(1, labels.unsqueeze(1)).squeeze(1)


@IDENTITY_LOSSES.register("ce")
def cross_entropy() -> IdentityLoss:
    """Paper: Zhang et al., "The Secret Revealer" (GMI), CVPR 2020 — softmax cross-entropy."""
    return lambda logits, labels: F.cross_entropy(logits, labels, reduction="none")


@IDENTITY_LOSSES.register("logit")
def logit_loss() -> IdentityLoss:
    """Paper: Nguyen et al., "Re-thinking Model Inversion Attacks Against Deep Neural Networks"
    (LOMMA), CVPR 2023 — −f_y."""
    return lambda logits, labels: -_true_logit(logits, labels)


@IDENTITY_LOSSES.register("max_margin")
def max_margin() -> IdentityLoss:
    """Paper: Yuan et al., "Pseudo Label-Guided Model Inversion Attack" (PLG-MI), AAAI 2023 — −f_y + max_{j≠y} f_j."""

    def loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        true = _true_logit(logits, labels)
        others = logits.scatter(1, labels.unsqueeze(1), float("-inf"))
        return -true + others.max(1).values

    return loss


@IDENTITY_LOSSES.register("poincare")
def poincare(delta: float = 1e-4) -> IdentityLoss:
    """Paper: Struppek et al., "Plug & Play Attacks" (PPA), ICML 2022 — Poincaré distance.

    Distance between the L1-normalised logits and the one-hot vector shrunk by ``delta`` (keeps
    both strictly inside the unit ball).
    """

    def loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        u = logits / logits.abs().sum(1, keepdim=True).clamp_min(1e-12)
        v = F.one_hot(labels, logits.shape[1]).to(logits.dtype).clamp(0, 1 - delta)
        u_norm = (u * u).sum(1).clamp(max=1 - 1e-6)
        v_norm = (v * v).sum(1)
        ratio = 2 * ((u - v) ** 2).sum(1) / ((1 - u_norm) * (1 - v_norm))
        return torch.acosh(1 + ratio)

    return loss


@IDENTITY_LOSSES.register("confidence_aware")
def confidence_aware(target_confidence: float) -> IdentityLoss:
    """Adaptive loss against CALoR's confidence adaptation: aim at p_y = p* instead of 1.

    Paper: Yu et al., "CALoR", arXiv 2410.05814 (reviewers' adaptive attack). CA trains private
    samples to p_y ≈ p* = exp(−1/b), so (log p_y − log p*)², minimised exactly at p_y = p*.
    """
    if not 0 < target_confidence < 1:
        raise ValueError(f"target_confidence must be in (0, 1), got {target_confidence!r}")
    log_target = math.log(target_confidence)

    def loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        log_p = _true_logit(logits.log_softmax(1), labels)
        return (log_p - log_target) ** 2

    return loss


def create_identity_loss(name: str, **params: Any) -> IdentityLoss:
    """Build a registered loss; unknown names or parameters raise naming the key."""
    factory = IDENTITY_LOSSES.get(name)
    accepted = list(inspect.signature(factory).parameters)
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ValueError(f"identity loss {name!r} takes no parameter(s) {unknown}; accepted: {accepted}")
    missing = [p.name for p in inspect.signature(factory).parameters.values()
               if p.default is inspect.Parameter.empty and p.name not in params]  # fmt: skip
    if missing:
        raise ValueError(f"identity loss {name!r} needs parameter(s) {missing}")
    return factory(**params)


def list_identity_losses() -> list[str]:
    return IDENTITY_LOSSES.names()


def identity_loss_problems(name: str, target_confidence: float | None) -> list[str]:
    """Validate an attack's (identity_loss, target_confidence) pair; messages name the param."""
    if name == "confidence_aware" and target_confidence is None:
        return ["target_confidence is required when identity_loss='confidence_aware', got None"]
    if name != "confidence_aware" and target_confidence is not None:
        return [f"target_confidence is only used by identity_loss='confidence_aware', got {target_confidence!r} "
                f"with identity_loss={name!r}"]  # fmt: skip
    try:
        build_identity_loss(name, target_confidence)
    except (KeyError, ValueError) as err:
        return [f"identity_loss: {err.args[0]}"]
    return []


def build_identity_loss(name: str, target_confidence: float | None) -> IdentityLoss:
    """The loss an attack's (identity_loss, target_confidence) params describe."""
    params = {} if target_confidence is None else {"target_confidence": target_confidence}
    return create_identity_loss(name, **params)
