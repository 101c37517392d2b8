"""The GANs' stage count: the default layout is frozen, other counts give the literature's shapes."""

from __future__ import annotations

import hashlib

import pytest
import torch
from torch import nn

from pipeline.prior import Discriminator, Generator, ImagePrior, PriorConfig, load_prior, save_prior
from pipeline.target_gan.networks import ConditionalGenerator, ProjectionDiscriminator, SemiSupervisedDiscriminator

# Computed at f9e446e, before the stage count existed (torch 2.14, PriorConfig(), torch.manual_seed(0),
# 10 classes): md5 of the module repr, of the state_dict's keys/shapes/dtypes, and of its values.
# The default checkpoints (prior.pt, plgmi.pt, kedmi.pt in dvc.lock) depend on all three.
DEFAULT_LAYOUT = {
    Generator: (
        "4e0a628e3fc9d9305b51bca47a0fa2bf",
        "96908329c0b8fbd013dae34722824a84",
        "13eb86fd6d0654d25ba19e214b235d3f",
    ),
    Discriminator: (
        "3cf4de6f88f5957c9312f5ee6934db35",
        "4075029b049aa7b68d6f2499661623d7",
        "e22358de1d8a2292aeed37550250c007",
    ),
    ConditionalGenerator: (
        "412af4a26369fff32d9045c8282d4c54",
        "7140d6799251108f5011aa595a4bd326",
        "930e1027c8c60157eae1d73c3c33d978",
    ),
    ProjectionDiscriminator: (
        "df0b604ec185eac99bafbb59d0b806ed",
        "7a035f5e2ddeacb1da1f29c7418a9adc",
        "5b50b5280c6875e824187f17d44c6f5a",
    ),
    SemiSupervisedDiscriminator: (
        "76e99210c57048dd6ce3cfaa84c81ad3",
        "65f17d97c0fa107d147b865f6c85d2f7",
        "ed2333b5028ba9f2125e966abad17d69",
    ),
}
DUMP_KEYS = ["image_size", "channels", "latent_dim", "gen_width", "disc_width", "epochs", "batch_size", "lr",
             "beta1", "ema_decay", "seed"]  # fmt: skip
TINY64 = dict(image_size=64, channels=3, latent_dim=8, gen_width=4, disc_width=4, stages=4)


def fingerprint(net: nn.Module) -> tuple[str, str, str]:
    state = net.state_dict()
    layout = ";".join(f"{k}:{tuple(v.shape)}:{v.dtype}" for k, v in state.items())
    values = hashlib.md5()
    for value in state.values():
        values.update(value.detach().contiguous().numpy().tobytes())
    md5 = lambda text: hashlib.md5(text.encode()).hexdigest()  # noqa: E731
    return md5(repr(net)), md5(layout), values.hexdigest()


@pytest.mark.parametrize("cls", list(DEFAULT_LAYOUT), ids=lambda cls: cls.__name__)
def test_default_networks_are_the_ones_before_the_stage_count(cls):
    cfg = PriorConfig()
    assert cfg.stages == 2 and PriorConfig(stages=2) == cfg
    torch.manual_seed(0)
    net = cls(cfg) if cls in (Generator, Discriminator) else cls(cfg, 10)
    assert fingerprint(net) == DEFAULT_LAYOUT[cls]


def test_the_default_stage_count_stays_out_of_the_dump_and_another_is_stored():
    assert list(PriorConfig().model_dump()) == DUMP_KEYS
    assert PriorConfig(stages=2).model_dump() == PriorConfig().model_dump()
    dump = PriorConfig(**TINY64).model_dump()
    assert dump["stages"] == 4 and PriorConfig.model_validate(dump) == PriorConfig(**TINY64)
    old = {k: v for k, v in dump.items() if k != "stages"}  # a checkpoint from before the field
    assert PriorConfig.model_validate({**old, "image_size": 28}).stages == 2


@pytest.mark.parametrize(("size", "stages"), [(12, 1), (28, 2), (32, 3), (64, 4)])
def test_each_stage_doubles_the_side_from_the_base_map(size, stages):
    cfg = PriorConfig(image_size=size, channels=3, latent_dim=8, gen_width=4, disc_width=4, stages=stages)
    gen, disc = Generator(cfg).eval(), Discriminator(cfg)
    base = size // 2**stages
    z = torch.randn(2, 8)
    assert gen.project(z).shape == (2, 4 * 2**stages, base, base)
    assert sum(isinstance(m, nn.ConvTranspose2d) for m in gen.body) == stages
    images = gen(z)
    assert images.shape == (2, 3, size, size)
    assert sum(isinstance(m, nn.Conv2d) for m in disc.net) == stages
    assert disc.net[:-2](images).shape == (2, 4 * 2 ** (stages - 1), base, base)  # before flatten and head
    assert disc(images).shape == (2,)


def test_the_literatures_64px_layout_starts_from_4x4():
    cfg = PriorConfig(**{**TINY64, "gen_width": 64, "disc_width": 64, "latent_dim": 100})
    gen = Generator(cfg)
    assert cfg.base_size == 4 and gen.project[-1].unflattened_size == (1024, 4, 4)
    assert [m.out_channels for m in gen.body if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)] == [512, 256, 128, 64, 3]
    assert [m.out_channels for m in Discriminator(cfg).net if isinstance(m, nn.Conv2d)] == [64, 128, 256, 512]


def test_a_four_stage_prior_round_trips_through_its_checkpoint(tmp_path):
    cfg = PriorConfig(**TINY64)
    prior = ImagePrior(Generator(cfg), Discriminator(cfg), cfg)
    save_prior(tmp_path / "prior.pt", prior)
    assert torch.load(tmp_path / "prior.pt", weights_only=True)["config"]["stages"] == 4
    loaded, _ = load_prior(tmp_path / "prior.pt")
    assert loaded.config == cfg and loaded.generator.project[-1].unflattened_size == (64, 4, 4)
    images = loaded.sample(3, seed=1)
    assert images.shape == (3, 3, 64, 64) and torch.equal(images, prior.sample(3, seed=1))
    assert torch.equal(loaded.discriminator(images), prior.discriminator(images))


def test_a_default_checkpoint_stores_no_stage_count_and_loads_two_stages(tmp_path):
    cfg = PriorConfig(image_size=12, latent_dim=8, gen_width=4, disc_width=4)
    save_prior(tmp_path / "prior.pt", ImagePrior(Generator(cfg), Discriminator(cfg), cfg))
    assert "stages" not in torch.load(tmp_path / "prior.pt", weights_only=True)["config"]
    assert load_prior(tmp_path / "prior.pt")[0].config.stages == 2


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"image_size": 28, "stages": 3}, r"image_size must be divisible by 2\^stages = 8 \(3 stride-2 stages\)"),
        ({"image_size": 30}, r"divisible by 2\^stages = 4 \(2 stride-2 stages\), got image_size 30"),
        ({"image_size": 64, "stages": 7}, "image_size"),
        ({"image_size": 64, "stages": 0}, "stages"),
    ],
)
def test_an_image_size_the_stages_cannot_reach_is_refused(params, match):
    with pytest.raises(ValueError, match=match):
        PriorConfig(**params)


def test_a_mismatched_checkpoint_names_the_architecture(tmp_path):
    cfg = PriorConfig(**TINY64)
    prior = ImagePrior(Generator(cfg), Discriminator(cfg), cfg)
    save_prior(tmp_path / "prior.pt", prior)
    payload = torch.load(tmp_path / "prior.pt", weights_only=True)
    payload["config"]["stages"] = 3  # 64 px from 8 x 8: other layers than the stored weights
    torch.save(payload, tmp_path / "prior.pt")
    with pytest.raises(ValueError, match="do not match the stored prior config"):
        load_prior(tmp_path / "prior.pt")
