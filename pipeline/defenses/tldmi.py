"""TL-DMI: fine-tune only the later layers; the front of the feature extractor stays frozen.

Paper: Ho, Hao, Tran, Chattopadhyay, Cheung, "Model Inversion Robustness: Can Transfer Learning
Help?", CVPR 2024. The front layers come from a model pretrained on PUBLIC data and never see the
private data, so the encoded private information is confined to the later layers. Give
``public_checkpoint`` (a classifier of the same architecture trained on public data) for that
setting; without it the front is the private-trained baseline's, which only restricts the
fine-tune (recorded as ``front_source`` in the report). A published implementation left the
"frozen" layers trainable, so after training this module raises unless every frozen parameter and
buffer is bit-identical; frozen BatchNorm layers run in eval mode so their statistics stay put too.
"""

from __future__ import annotations

import copy

import torch
from pydantic import Field, field_validator
from torch import nn

from pipeline.checkpoint import load_checkpoint
from pipeline.config import TrainConfig
from pipeline.defenses.common import no_label_smoothing, phase_callback
from pipeline.defenses.registry import DefenseConfig, DefenseData, DefenseResult, PhaseCallback, register_defense
from pipeline.models import Classifier, create_model
from pipeline.seeding import seed_everything
from pipeline.train import fit


class TldmiConfig(DefenseConfig):
    frozen_fraction: float = Field(0.5, gt=0, lt=1)  # of the feature extractor's parameters
    public_checkpoint: str | None = None
    train: TrainConfig

    _plain = field_validator("train")(no_label_smoothing)


class FrozenLayersChangedError(RuntimeError):
    """A parameter or buffer that TL-DMI froze changed during fine-tuning."""


def _own_size(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters(recurse=False))


def front_modules(features: nn.Module, fraction: float) -> list[tuple[str, nn.Module]]:
    """The longest prefix (registration order) of modules owning parameters or buffers whose
    parameter count stays ≤ ``fraction`` of the extractor's; whole modules, never half a layer."""
    total = sum(p.numel() for p in features.parameters())
    owners = [
        (name, m) for name, m in features.named_modules()
        if next(m.parameters(recurse=False), None) is not None or next(m.buffers(recurse=False), None) is not None
    ]  # fmt: skip
    front, count = [], 0
    for name, module in owners:
        if count + _own_size(module) > fraction * total:
            break
        front.append((name, module))
        count += _own_size(module)
    if count == 0:
        first = next((n for n, m in owners if _own_size(m) > 0), "?")
        raise ValueError(
            f"harden.tldmi.frozen_fraction {fraction} freezes no whole layer: the first, {first!r}, already "
            f"holds more than {fraction:.0%} of the {total} feature parameters"
        )
    return front


def snapshot(modules: list[tuple[str, nn.Module]]) -> dict[str, torch.Tensor]:
    return {f"{name}.{key}": t.detach().clone() for name, m in modules for key, t in m.state_dict().items()}


def verify_unchanged(before: dict[str, torch.Tensor], modules: list[tuple[str, nn.Module]]) -> None:
    """Raise (never assert: ``python -O`` strips asserts) unless every frozen tensor is bit-identical."""
    after = snapshot(modules)
    changed = [name for name, tensor in before.items() if not torch.equal(tensor, after[name])]
    if changed:
        raise FrozenLayersChangedError(f"TL-DMI: frozen tensors changed during fine-tuning: {changed}")


def starting_model(baseline: Classifier, config: TldmiConfig) -> tuple[Classifier, str]:
    """The baseline, or (with ``public_checkpoint``) a fresh classifier on the public model's features."""
    if config.public_checkpoint is None:
        return copy.deepcopy(baseline), "baseline (private data)"
    public, _ = load_checkpoint(config.public_checkpoint)
    ours, theirs = baseline.config, public.config
    if (ours.arch, ours.width, ours.in_channels, ours.image_size) != (
        theirs.arch, theirs.width, theirs.in_channels, theirs.image_size
    ):  # fmt: skip
        raise ValueError(
            f"harden.tldmi.public_checkpoint {config.public_checkpoint}: its backbone "
            f"({theirs.arch}, width {theirs.width}, {theirs.in_channels}×{theirs.image_size}px) differs from the "
            f"baseline's ({ours.arch}, width {ours.width}, {ours.in_channels}×{ours.image_size}px)"
        )
    seed_everything(config.train.seed)  # the new head's initialisation
    model = create_model(baseline.config)
    model.features.load_state_dict(public.features.state_dict())
    return model, f"public checkpoint {config.public_checkpoint}"


@register_defense("tldmi", TldmiConfig)
def tldmi(
    baseline: Classifier, config: TldmiConfig, data: DefenseData, on_epoch: PhaseCallback | None = None
) -> DefenseResult:
    """Freeze the front of the features, fine-tune the rest and the head, prove the front unchanged."""
    model, source = starting_model(baseline, config)
    front = front_modules(model.features, config.frozen_fraction)
    for _, module in front:
        module.requires_grad_(False)
    if any(p.requires_grad for _, m in front for p in m.parameters()):
        raise RuntimeError("TL-DMI: a frozen parameter still requires grad")
    frozen_modules = [m for _, m in front]

    def keep_front_in_eval(module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        for m in frozen_modules:  # fit() sets train mode each epoch: keep frozen BN statistics fixed
            m.eval()

    handle = model.register_forward_pre_hook(keep_front_in_eval)
    before = snapshot(front)
    try:
        history = fit(
            model, data.train, config.train, eval_data=data.test,
            on_epoch=phase_callback(on_epoch, "tldmi"), desc="tl-dmi: fine-tune later layers",
        )  # fmt: skip
    finally:
        handle.remove()
    verify_unchanged(before, front)
    model.requires_grad_(True)  # the frozen state is a training detail, not part of the released model
    frozen = sum(_own_size(m) for m in frozen_modules)
    total = sum(p.numel() for p in model.features.parameters())
    report = {
        "frozen_fraction": config.frozen_fraction, "frozen_fraction_actual": frozen / total,
        "frozen_modules": [name for name, _ in front], "frozen_parameters": frozen,
        "feature_parameters": total, "front_source": source, "frozen_verified_unchanged": True,
    }  # fmt: skip
    return DefenseResult(model=model, history={"tldmi": history}, report=report)
