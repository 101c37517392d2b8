"""The GAN prior: shapes and range, config validation, determinism, checkpoint round trip, PNG grid."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.prior import (
    Discriminator,
    Generator,
    ImagePrior,
    PriorConfig,
    load_prior,
    save_image_grid,
    save_prior,
    train_prior,
)

TINY = dict(image_size=12, channels=1, latent_dim=8, gen_width=4, disc_width=4, epochs=2, batch_size=16)


def _images(n: int = 48, channels: int = 1, size: int = 12) -> np.ndarray:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 30, (n, channels, size, size), dtype=np.uint8)
    images[:, :, size // 3 : 2 * size // 3, 2:-2] = 230  # a bright bar to learn
    return images


@pytest.mark.parametrize(("size", "channels"), [(28, 1), (12, 3), (32, 3)])
def test_generator_and_discriminator_shapes(size, channels):
    cfg = PriorConfig(image_size=size, channels=channels, latent_dim=10, gen_width=4, disc_width=4)
    images = Generator(cfg).eval()(torch.randn(5, 10))
    assert images.shape == (5, channels, size, size)
    assert images.min() >= 0 and images.max() <= 1
    assert Discriminator(cfg)(images).shape == (5,)


@pytest.mark.parametrize(("key", "value"), [("image_size", 30), ("latent_dim", 0), ("lr", -1.0), ("beta1", 1.0)])
def test_config_errors_name_the_key(key, value):
    with pytest.raises(ValueError, match=key):
        PriorConfig(**{key: value})


def test_config_rejects_unknown_keys_and_round_trips_through_its_dump():
    with pytest.raises(ValueError, match="latent"):
        PriorConfig.model_validate({"latent": 5})
    assert PriorConfig.model_validate(PriorConfig(**TINY).model_dump()) == PriorConfig(**TINY)


def test_training_is_deterministic_and_leaves_the_callers_rng_alone():
    cfg = PriorConfig(**TINY)
    rng_state = torch.get_rng_state()
    first = train_prior(_images(), cfg, progress=False)
    assert torch.equal(torch.get_rng_state(), rng_state)
    second = train_prior(_images(), cfg, progress=False)
    assert len(first.d_loss) == len(first.g_loss) == cfg.epochs
    assert all(np.isfinite(first.d_loss)) and first.d_loss == second.d_loss
    for a, b in zip(first.generator.state_dict().values(), second.generator.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    other = train_prior(_images(), PriorConfig(**{**TINY, "seed": 1}), progress=False)
    assert first.d_loss != other.d_loss


def test_trained_prior_is_frozen_and_in_eval_mode():
    prior = train_prior(_images(), PriorConfig(**TINY), progress=False).prior
    for net in (prior.generator, prior.discriminator):
        assert not net.training and not any(p.requires_grad for p in net.parameters())
    assert torch.equal(prior.sample(4, seed=2), prior.sample(4, seed=2))


@pytest.mark.parametrize(
    ("images", "error"),
    [
        (_images().astype(np.float32), TypeError),  # float: refuse to guess the scale
        (_images(size=16), ValueError),  # wrong size for the config
        (_images(n=4), ValueError),  # fewer than one batch
    ],
)
def test_training_rejects_bad_images(images, error):
    with pytest.raises(error):
        train_prior(images, PriorConfig(**TINY), progress=False)


def test_checkpoint_round_trip(tmp_path):
    cfg = PriorConfig(**TINY)
    prior = ImagePrior(Generator(cfg), Discriminator(cfg), cfg)
    path = tmp_path / "prior.pt"
    save_prior(path, prior, extra={"params_hash": "abc"})
    loaded, meta = load_prior(path)
    assert loaded.config == cfg and meta["extra"] == {"params_hash": "abc"}
    assert torch.equal(loaded.sample(6, seed=1), prior.sample(6, seed=1))
    x = prior.sample(3, seed=0)
    assert torch.equal(loaded.discriminator(x), prior.discriminator(x))
    assert [p.name for p in tmp_path.iterdir()] == ["prior.pt"]  # no temporary files left behind


def test_loading_a_bad_file_names_it(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="bad.pt"):
        load_prior(bad)
    with pytest.raises(FileNotFoundError):
        load_prior(tmp_path / "missing.pt")
    torch.save({"format_version": 1}, tmp_path / "partial.pt")
    with pytest.raises(ValueError, match="kind"):
        load_prior(tmp_path / "partial.pt")


def test_sample_grid_is_a_png(tmp_path):
    path = tmp_path / "grid.png"
    save_image_grid(path, torch.rand(12, 1, 12, 12), nrow=4)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="shape"):
        save_image_grid(path, torch.rand(12, 12))


def test_ema_generator_differs_from_the_last_weights():
    last = train_prior(_images(), PriorConfig(**{**TINY, "ema_decay": 0.0}), progress=False).prior
    averaged = train_prior(_images(), PriorConfig(**TINY), progress=False).prior
    assert not torch.equal(last.sample(4, seed=0), averaged.sample(4, seed=0))
    with pytest.raises(ValueError, match="ema_decay"):
        PriorConfig(ema_decay=1.0)


def test_thread_setting_is_restored():
    before = torch.get_num_threads()
    train_prior(_images(), PriorConfig(**{**TINY, "epochs": 1}), progress=False, num_threads=1)
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="num_threads"):
        train_prior(_images(), PriorConfig(**TINY), progress=False, num_threads=0)
