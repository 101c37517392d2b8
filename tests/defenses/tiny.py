"""Tiny training settings, a briefly trained baseline and one tiny config per registered defense."""

from __future__ import annotations

from typing import Any

import torch

from pipeline.config import TrainConfig
from pipeline.data.parts import LabelledImages
from pipeline.models import Classifier, ModelConfig, create_model
from pipeline.seeding import seed_everything
from pipeline.train import fit


def tiny_train(**overrides: Any) -> dict[str, Any]:
    """A train section as params.yaml would give it: 2 epochs of 4 steps on the 64-image toy set."""
    return {"epochs": 2, "batch_size": 16, "lr": 0.01, "seed": 0, **overrides}


# One entry per registered defense; a defense registered without one fails the registry test.
TINY_CONFIGS: dict[str, dict[str, Any]] = {
    "calor": {
        "low_rank": {"rank": 2, "train": tiny_train()},
        "confidence_adaptation": {"train": tiny_train(optimizer="sgd")},
    },
    "mid": {"train": tiny_train()},
    "bido": {"train": tiny_train()},
    "negls": {"train": tiny_train()},
    "tldmi": {"train": tiny_train()},
    "dpsgd": {"train": tiny_train(optimizer="sgd", lr=0.1)},
    "plain_finetune": {"train": tiny_train()},
}


def make_baseline(data: LabelledImages) -> Classifier:
    """A convnet (BatchNorm included, as in the real targets) trained for 3 short epochs."""
    seed_everything(0)
    model = create_model(ModelConfig(arch="convnet", num_classes=4, width=8, image_size=12))
    fit(model, data, TrainConfig(**tiny_train(epochs=3)), progress=False)
    return model


def state_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def changed_parameters(before: torch.nn.Module, after: torch.nn.Module) -> set[str]:
    b, a = dict(before.named_parameters()), dict(after.named_parameters())
    return {name for name in b if name in a and not torch.equal(b[name], a[name])}
