"""The one training loop: learns, is deterministic, stops on NaN; optimisers and schedules do what they say."""

import math

import pytest
import torch

from pipeline.augment import flip_shift
from pipeline.config import TrainConfig
from pipeline.data.parts import LabelledImages
from pipeline.models import ModelConfig, create_model
from pipeline.seeding import seed_everything
from pipeline.train import TrainingDivergedError, build_optimizer, build_scheduler, fit
from tests.fixtures_models import tiny_data


def make_model(seed=0):
    seed_everything(seed)
    return create_model(ModelConfig(arch="convnet", num_classes=4, width=8, image_size=12))


def cfg(**kw):
    return TrainConfig(**{"epochs": 4, "batch_size": 16, "lr": 0.01, "seed": 0, **kw})


def test_fit_learns_a_separable_task():
    data = tiny_data()
    history = fit(make_model(), data, cfg(epochs=6), eval_data=data, progress=False)
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["val_natural_accuracy"] > 0.9


def test_fit_is_deterministic_for_a_seed_and_differs_across_seeds():
    data = tiny_data()
    runs = []
    for seed in (0, 0, 1):
        model = make_model()
        fit(model, data, cfg(seed=seed, augment="flip_shift"), progress=False)
        runs.append(torch.cat([p.flatten() for p in model.parameters()]))
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])


def linear_model() -> torch.nn.Module:
    """A linear classifier: learns tiny_data's bars in a few steps, cheaper than a convnet."""
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(144, 4))


def schedule_lrs(config: TrainConfig, steps_per_epoch: int) -> list[float]:
    """The lr of each optimiser step under ``fit``'s scheduler, and the one after the last step."""
    optimizer = build_optimizer([torch.nn.Parameter(torch.zeros(1))], config)
    scheduler = build_scheduler(optimizer, config, steps_per_epoch)
    lrs = []
    for _ in range(config.epochs * steps_per_epoch):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return [*lrs, optimizer.param_groups[0]["lr"]]


@pytest.mark.parametrize(
    "optimizer,kind,group",
    [
        ("sgd", torch.optim.SGD, {"lr": 0.05, "momentum": 0.8, "weight_decay": 1e-4, "nesterov": False}),
        ("adam", torch.optim.Adam, {"lr": 0.05, "weight_decay": 1e-4, "betas": (0.9, 0.999)}),
        ("adamw", torch.optim.AdamW, {"lr": 0.05, "weight_decay": 1e-4, "betas": (0.9, 0.999)}),
    ],
)
def test_optimizer_is_the_configured_one_with_its_settings(optimizer, kind, group):
    params = [torch.nn.Parameter(torch.zeros(2))]
    built = build_optimizer(params, cfg(optimizer=optimizer, lr=0.05, momentum=0.8, weight_decay=1e-4))
    assert type(built) is kind
    (only,) = built.param_groups
    assert only["params"] == params
    assert {key: only[key] for key in group} == group


def test_cosine_anneals_from_lr_to_zero_over_every_step():
    lrs = schedule_lrs(cfg(epochs=3, lr=0.1, schedule="cosine"), steps_per_epoch=4)
    expected = [0.1 * 0.5 * (1 + math.cos(math.pi * s / 12)) for s in range(13)]
    assert lrs == pytest.approx(expected, abs=1e-12)
    assert lrs[6] == pytest.approx(0.05) and lrs[-1] == pytest.approx(0.0, abs=1e-12)


def test_step_multiplies_by_gamma_at_each_milestone_epoch():
    lrs = schedule_lrs(cfg(epochs=3, lr=0.1, schedule="step", step_milestones=[1, 2], step_gamma=0.5), 4)
    assert lrs == pytest.approx([0.1] * 4 + [0.05] * 4 + [0.025] * 5)


def test_onecycle_warms_up_to_lr_then_anneals_far_below_the_start():
    lrs = schedule_lrs(cfg(epochs=5, lr=0.1, schedule="onecycle"), steps_per_epoch=4)
    peak = max(range(20), key=lambda s: lrs[s])
    assert lrs[0] == pytest.approx(0.1 / 25)  # torch's div_factor
    assert peak == 5 and 0.099 < lrs[peak] <= 0.1  # the peak after 30 % of the 20 steps
    assert all(lrs[s] < lrs[s + 1] for s in range(peak))
    assert all(lrs[s] > lrs[s + 1] for s in range(peak, 19))
    assert lrs[19] == pytest.approx(0.1 / 25 / 1e4)  # final_div_factor, at the last step


def test_none_keeps_lr_constant():
    assert schedule_lrs(cfg(epochs=2, lr=0.1, schedule="none"), 4) == [0.1] * 9


@pytest.mark.parametrize(
    "optimizer,schedule", [("sgd", "step"), ("adam", "onecycle"), ("adamw", "cosine"), ("sgd", "none")]
)
def test_each_optimizer_learns_the_toy_task_under_the_lr_its_schedule_gives(optimizer, schedule):
    data = tiny_data()  # 64 images, batch 16: 4 steps per epoch
    config = cfg(epochs=3, optimizer=optimizer, schedule=schedule, lr=0.05, step_milestones=[1, 2])
    history = fit(linear_model(), data, config, eval_data=data, progress=False)
    losses = [epoch["train_loss"] for epoch in history]
    assert losses[0] > losses[1] > losses[2], losses
    assert history[-1]["val_natural_accuracy"] == 1.0
    expected_lrs = schedule_lrs(config, steps_per_epoch=4)
    assert [epoch["lr"] for epoch in history] == pytest.approx([expected_lrs[4], expected_lrs[8], expected_lrs[12]])


def test_nan_loss_stops_with_a_clear_error():
    def nan_loss(logits, y):
        return logits.sum() * float("nan")

    with pytest.raises(TrainingDivergedError, match="epoch 1, step 1"):
        fit(make_model(), tiny_data(), cfg(), loss_fn=nan_loss, progress=False, desc="boom")


def test_flip_shift_preserves_content_up_to_translation():
    x = torch.zeros(64, 1, 8, 8)
    x[:, :, 3:5, 3:5] = 1.0
    out = flip_shift(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    assert torch.all(out.sum((1, 2, 3)) == 4.0)  # the square never leaves the image (shift ≤ 2)
    assert not torch.equal(out, x)


def test_labelled_images_validates_inputs():
    with pytest.raises(ValueError, match="uint8"):
        LabelledImages(torch.zeros(2, 1, 4, 4), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="labels shape"):
        LabelledImages(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), torch.zeros(3, dtype=torch.long))
