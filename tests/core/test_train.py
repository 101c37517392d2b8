"""The one training loop: learns, is deterministic, stops on NaN, and every schedule runs."""

import pytest
import torch

from pipeline.augment import flip_shift
from pipeline.config import TrainConfig
from pipeline.data.parts import LabelledImages
from pipeline.models import ModelConfig, create_model
from pipeline.seeding import seed_everything
from pipeline.train import TrainingDivergedError, fit
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


@pytest.mark.parametrize("schedule", ["cosine", "step", "onecycle", "none"])
@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
def test_schedules_and_optimizers(schedule, optimizer):
    history = fit(
        make_model(), tiny_data(), cfg(epochs=2, schedule=schedule, optimizer=optimizer, step_milestones=[1]),
        progress=False,
    )  # fmt: skip
    if schedule == "cosine":
        assert history[-1]["lr"] == pytest.approx(0.0, abs=1e-9)
    if schedule == "step":
        assert history[-1]["lr"] == pytest.approx(0.001)


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
