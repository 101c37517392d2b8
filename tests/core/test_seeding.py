import pytest
import torch

from pipeline.config import TrainConfig
from pipeline.models import ModelConfig, create_model
from pipeline.seeding import seed_everything, seeded_rng
from pipeline.train import fit
from tests.fixtures_models import tiny_data


def test_seeded_rng_draws_depend_only_on_the_seed():
    draws = []
    for history in (0, 1):
        torch.manual_seed(history)  # whatever ran before in the process
        with seeded_rng(7):
            draws.append(torch.rand(4))
    assert torch.equal(draws[0], draws[1])


def test_seeded_rng_leaves_the_callers_stream_where_it_was():
    torch.manual_seed(3)
    expected = torch.rand(4)
    torch.manual_seed(3)
    with seeded_rng(7):
        torch.rand(100)
    assert torch.equal(torch.rand(4), expected)


@pytest.mark.parametrize("enabled", [False, True])
def test_seeding_and_training_a_model_leave_deterministic_algorithms_as_they_were(enabled):
    """Deterministic algorithms are the stage's choice (pipeline.runtime), never a side effect."""
    previous = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    try:
        torch.use_deterministic_algorithms(enabled, warn_only=True)
        seed_everything(0)
        assert torch.are_deterministic_algorithms_enabled() is enabled
        model = create_model(ModelConfig(arch="convnet", num_classes=4, width=8, image_size=12))
        fit(model, tiny_data(), TrainConfig(epochs=1, batch_size=16, lr=0.01, seed=0), progress=False)
        assert torch.are_deterministic_algorithms_enabled() is enabled
    finally:
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])
