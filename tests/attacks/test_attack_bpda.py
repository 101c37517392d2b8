"""BPDA through CALoR's tanh: forward unchanged, backward the identity, original model untouched."""

from __future__ import annotations

import copy

import torch
from torch import nn

from pipeline.attacks import BPDATanh, with_bpda_tanh
from tests.attacks import toy


def test_bpda_tanh_forward_is_tanh_backward_is_identity():
    x = torch.linspace(-4, 4, 41, dtype=torch.float64, requires_grad=True)
    y = BPDATanh()(x)
    assert torch.equal(y, torch.tanh(x))
    upstream = torch.randn(41, dtype=torch.float64)
    (grad,) = torch.autograd.grad(y, x, upstream)
    assert torch.equal(grad, upstream)  # tanh' = 1 − tanh² would shrink it to ~0 at |x| = 4


def test_patched_head_gradient_equals_the_head_without_tanh():
    """d logits / d features through the BPDA head == through the same head with identity."""
    model = toy.tiny_classifier(seed=1)
    patched, replaced = with_bpda_tanh(model)
    assert replaced == 1 and isinstance(patched.head.activation, BPDATanh)
    assert isinstance(model.head.activation, nn.Tanh), "the original model must stay untouched"
    linear_head = copy.deepcopy(model.head)
    linear_head.activation = nn.Identity()
    feats = (3 * torch.randn(6, model.feature_dim)).requires_grad_()
    upstream = torch.randn(6, model.num_classes)
    (grad_bpda,) = torch.autograd.grad(patched.head(feats), feats, upstream)
    (grad_linear,) = torch.autograd.grad(linear_head(feats), feats, upstream)
    (grad_tanh,) = torch.autograd.grad(model.head(feats), feats, upstream)
    torch.testing.assert_close(grad_bpda, grad_linear)
    assert not torch.allclose(grad_bpda, grad_tanh)


def test_patched_model_forward_is_unchanged():
    model = toy.tiny_classifier(seed=1)
    patched, _ = with_bpda_tanh(model)
    x = torch.rand(5, 1, toy.SIZE, toy.SIZE)
    assert torch.equal(patched(x), model(x))


def test_head_without_tanh_is_a_no_op():
    model = toy.tiny_classifier(seed=1, low_rank=False)
    patched, replaced = with_bpda_tanh(model)
    assert replaced == 0
    x = torch.rand(3, 1, toy.SIZE, toy.SIZE)
    assert torch.equal(patched(x), model(x))
