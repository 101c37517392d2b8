"""BPDA against CALoR's saturating tanh: tanh in the forward pass, identity in the backward pass.

Paper: Athalye et al., "Obfuscated Gradients Give a False Sense of Security", ICML 2018 (BPDA).
CALoR puts a tanh inside the low-rank head so that an attacker's gradients vanish once the
activations saturate; an adaptive attacker differentiates through it as if it were the identity.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class _TanhIdentityBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> torch.Tensor:
        return grad_output


class BPDATanh(nn.Module):
    """Forward: tanh(x). Backward: the upstream gradient unchanged (d tanh/dx replaced by 1)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _TanhIdentityBackward.apply(x)


def with_bpda_tanh(model: nn.Module) -> tuple[nn.Module, int]:
    """Deep copy of ``model`` with every ``nn.Tanh`` in its head replaced by ``BPDATanh``.

    Returns the copy and the number of replaced modules (0 for heads without tanh: a no-op).
    The original model is not touched.
    """
    patched = copy.deepcopy(model)
    head = patched.head if hasattr(patched, "head") else patched
    replaced = 0
    for parent in list(head.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Tanh):
                setattr(parent, name, BPDATanh())
                replaced += 1
    if isinstance(head, nn.Tanh):  # a head that is a bare tanh (unusual, but not a reason to miss it)
        patched.head = BPDATanh()
        replaced += 1
    return patched, replaced
