"""TL-DMI: the front really stays frozen (bit-identical, BN statistics included), the rest trains."""

from __future__ import annotations

import pytest
import torch

from pipeline.checkpoint import save_checkpoint
from pipeline.defenses import DefenseData, get_defense
from pipeline.defenses.tldmi import FrozenLayersChangedError, TldmiConfig, front_modules, snapshot, verify_unchanged
from pipeline.models import ModelConfig, create_model
from tests.defenses.tiny import changed_parameters, tiny_train


def run(baseline, data, **kw):
    return get_defense("tldmi").apply(baseline, TldmiConfig(train=tiny_train(), **kw), DefenseData(data, data))


def test_front_stays_bit_identical_and_later_layers_change(baseline, data):
    result = run(baseline, data)
    frozen = result.report["frozen_modules"]
    assert frozen and result.report["frozen_verified_unchanged"]
    assert 0 < result.report["frozen_fraction_actual"] <= 0.5
    before, after = baseline.features.state_dict(), result.model.features.state_dict()
    for key in before:  # parameters and BN running statistics of every frozen module
        if key.rsplit(".", 1)[0] in frozen:
            assert torch.equal(before[key], after[key]), key
    changed = changed_parameters(baseline, result.model)
    assert changed and all(name.split(".")[1] not in frozen for name in changed if name.startswith("features."))
    assert {"head.weight", "head.bias"} <= changed
    assert all(p.requires_grad for p in result.model.parameters())  # released model: nothing left frozen


def test_verification_raises_when_a_frozen_tensor_moves(baseline):
    model = create_model(baseline.config)
    front = front_modules(model.features, 0.5)
    before = snapshot(front)
    with torch.no_grad():
        front[0][1].weight.add_(1e-3)
    with pytest.raises(FrozenLayersChangedError, match="frozen tensors changed"):
        verify_unchanged(before, front)


def test_a_fraction_that_freezes_no_whole_layer_is_refused(baseline, data):
    with pytest.raises(ValueError, match="frozen_fraction"):
        run(baseline, data, frozen_fraction=0.001)


def test_front_comes_from_the_public_checkpoint_when_given(baseline, data, tmp_path):
    torch.manual_seed(1)
    public = create_model(ModelConfig(arch="convnet", num_classes=3, width=8, image_size=12))  # other classes
    path = tmp_path / "public.pt"
    save_checkpoint(path, public, {})
    result = run(baseline, data, public_checkpoint=str(path))
    assert result.report["front_source"].startswith("public checkpoint")
    frozen = result.report["frozen_modules"]
    for key, value in public.features.state_dict().items():
        if key.rsplit(".", 1)[0] in frozen:
            assert torch.equal(value, result.model.features.state_dict()[key]), key
    assert result.model.num_classes == baseline.num_classes


def test_a_public_checkpoint_of_another_architecture_is_refused(baseline, data, tmp_path):
    path = tmp_path / "judge.pt"
    save_checkpoint(path, create_model(ModelConfig(arch="judge_net", num_classes=4, width=8, image_size=12)), {})
    with pytest.raises(ValueError, match="differs from the baseline"):
        run(baseline, data, public_checkpoint=str(path))
