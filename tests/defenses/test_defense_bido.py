"""BiDO-HSIC: the HSIC terms are computed on the right layers, are non-zero and change training."""

from __future__ import annotations

import pytest
import torch

from pipeline.config import parse_section
from pipeline.defenses import DefenseData, get_defense
from pipeline.defenses.bido import BidoConfig, gaussian_kernel, normalized_hsic, stage_layers
from pipeline.models import ModelConfig, create_model
from tests.defenses.tiny import tiny_train


def test_normalized_hsic_detects_dependence():
    """At BiDO's σ = 5 and m = 64: a function of x scores well above an independent variable."""
    g = torch.Generator().manual_seed(0)
    x, independent = torch.randn(64, 10, generator=g), torch.randn(64, 10, generator=g)
    k_x, k_ind = gaussian_kernel(x, 5.0), gaussian_kernel(independent, 5.0)
    dependent = normalized_hsic(k_x, gaussian_kernel(x**2 + 0.01 * independent, 5.0)).item()
    unrelated = normalized_hsic(k_x, k_ind).item()
    assert dependent > 1.3 * unrelated > 0
    assert normalized_hsic(k_x, k_ind).item() == pytest.approx(normalized_hsic(k_ind, k_x).item(), rel=1e-6)
    labels = torch.arange(4).repeat_interleave(16)
    onehot = torch.nn.functional.one_hot(labels).double()
    k_y = onehot @ onehot.T
    informative = torch.randn(64, 8, generator=g) * 0.1 + onehot.float() @ torch.randn(4, 8, generator=g)
    assert normalized_hsic(gaussian_kernel(informative, 5.0), k_y) > normalized_hsic(k_x, k_y)


def test_default_layers_are_one_per_stage():
    convnet = create_model(ModelConfig(arch="convnet", num_classes=4, width=8, image_size=12))
    assert stage_layers(convnet.features, torch.rand(2, 1, 12, 12)) == ["5", "12", "13"]
    resnet = create_model(ModelConfig(arch="resnet18", num_classes=4, in_channels=3, image_size=64))
    layers = stage_layers(resnet.features, torch.rand(2, 3, 64, 64))
    assert layers == ["relu", "layer1", "layer2", "layer3", "layer4", "avgpool"]


def test_bido_computes_non_zero_hsic_terms_and_changes_the_update(baseline, data):
    result = get_defense("bido").apply(baseline, BidoConfig(train=tiny_train()), DefenseData(data, data))
    assert result.report["hsic_layers"] == ["5", "12", "13", "features"]
    for row in result.history["bido"]:
        assert row["train_hsic_x"] > 0 and row["train_hsic_y"] > 0
    assert result.report["final_hsic_y"] > 0
    plain = get_defense("plain_finetune").apply(
        baseline, get_defense("plain_finetune").config_schema(train=tiny_train()), DefenseData(data, data)
    )
    # same data order, same optimiser: only the HSIC terms can make the weights differ
    assert not torch.equal(result.model.head.weight, plain.model.head.weight)


@pytest.mark.parametrize("lambda_y", [0.0, -0.5])
def test_lambda_y_not_positive_is_refused_with_the_reason(lambda_y):
    with pytest.raises(ValueError, match=r"harden\.bido\.lambda_y.*collapses the model"):
        parse_section("harden.bido", {"lambda_y": lambda_y, "train": tiny_train()}, BidoConfig)


def test_large_batches_are_refused():
    with pytest.raises(ValueError, match=r"harden\.bido\.train.*batch_size must be <= 64"):
        parse_section("harden.bido", {"train": tiny_train(batch_size=128)}, BidoConfig)


def test_unknown_layer_names_are_refused(baseline, data):
    config = BidoConfig(layers=["nope"], train=tiny_train())
    with pytest.raises(ValueError, match="nope"):
        get_defense("bido").apply(baseline, config, DefenseData(data, data))
