"""Target-specific GANs: pseudo-labels, warm start, where the target's knowledge enters, storage."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError
from torch import nn

from pipeline.attacks.losses import create_identity_loss
from pipeline.prior import Discriminator, Generator, ImagePrior, PriorConfig
from pipeline.target_gan import (
    ConditionalPrior,
    KEDMIPrior,
    KEDMISection,
    PLGMISection,
    TargetGANSection,
    load_target_gan,
    pseudo_label,
    save_target_gan,
    train_kedmi,
    train_plgmi,
)
from pipeline.target_gan.kedmi import discriminator_loss
from pipeline.target_gan.networks import (
    ConditionalGenerator,
    SemiSupervisedDiscriminator,
    build_kedmi_networks,
    build_plgmi_networks,
)
from pipeline.target_gan.plgmi import max_margin_loss
from tests.attacks import toy
from tests.target_gan import toy_gan

TINY = dict(batch_size=16, latent_dim=16, gen_width=8, disc_width=8)


def _plg(**params) -> PLGMISection:
    return PLGMISection(**{**TINY, "inv_batch_size": 16, **params})


@pytest.fixture(scope="module")
def toy_setup():
    images, labels = toy.toy_images(30, seed=0)
    target = toy.train_classifier(toy.tiny_classifier("convnet", seed=3, low_rank=False), images, labels, 40, seed=3)
    return images, target, toy.untrained_prior(seed=0)


class PixelLogits(nn.Module):
    """A 'target' whose K logits are the first K pixels of the image ×10: confidences are known."""

    def __init__(self, k: int):
        super().__init__()
        self.k = k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 10 * x.flatten(1)[:, : self.k]


def test_pseudo_label_picks_the_targets_most_confident_images_per_class():
    g = torch.Generator().manual_seed(0)
    images = torch.rand(200, 1, 2, 2, generator=g)
    model = PixelLogits(3)
    chosen, labels = pseudo_label(model, images, [0, 1, 2], top_k=10)
    probs = model(images).softmax(1)
    argmax = probs.argmax(1)
    expected = []
    for c in range(3):
        members = [i for i in range(200) if argmax[i] == c]
        members.sort(key=lambda i: -probs[i, c].item())
        expected += members[:10]
    assert torch.equal(chosen, images[expected])
    assert labels.tolist() == [c for c in range(3) for _ in range(10)]
    assert len({tuple(x.flatten().tolist()) for x in chosen}) == 30  # no image serves two classes


def test_pseudo_label_assigns_an_image_to_its_argmax_class_only():
    # Image 0 has a high p_0 (the highest p_0 of all three), but its argmax is class 1: it serves
    # class 1 only, and class 0 gets image 1.
    images = torch.tensor([[0.9, 1.0, 0.0], [0.5, 0.0, 0.0], [0.0, 0.0, 0.6]]).view(3, 1, 1, 3)
    chosen, labels = pseudo_label(PixelLogits(3), images, [0, 1, 2], top_k=5)
    assert labels.tolist() == [0, 1, 2]
    assert torch.equal(chosen, images[[1, 0, 2]])
    with pytest.raises(ValueError, match="top_k"):
        pseudo_label(PixelLogits(3), images, [0], top_k=0)


def test_max_margin_matches_the_attack_loss():
    logits, labels = torch.randn(7, 5), torch.randint(0, 5, (7,))
    torch.testing.assert_close(max_margin_loss(logits, labels), create_identity_loss("max_margin")(logits, labels))


def _generic(stages: int) -> ImagePrior:
    """An untrained generic prior (12 px, or 64 px RGB from 4 x 4) with every BatchNorm's affine and
    statistics randomised, so that a warm start that skipped one would show."""
    if stages == 2:
        generic = toy.untrained_prior(seed=1)
    else:
        cfg = PriorConfig(image_size=64, channels=3, latent_dim=16, gen_width=4, disc_width=4, stages=stages)
        torch.manual_seed(1)
        generic = ImagePrior(Generator(cfg), Discriminator(cfg), cfg)
    with torch.no_grad():
        for bn in generic.generator.modules():
            if isinstance(bn, nn.modules.batchnorm._BatchNorm):
                for tensor in (bn.weight, bn.bias, bn.running_mean):
                    tensor.copy_(torch.randn_like(tensor) * 0.3 + (1.0 if tensor is bn.weight else 0.0))
                bn.running_var.uniform_(0.5, 2.0)
    return generic


@pytest.mark.parametrize("stages", [2, 4])
def test_warm_started_generators_reproduce_the_generic_prior(stages):
    generic = _generic(stages)
    cond, _ = build_plgmi_networks(generic.config, 4, generic)
    plain, _ = build_kedmi_networks(generic.config, 4, generic)
    cond.eval()
    plain.eval()
    z = torch.randn(6, generic.latent_dim)
    with torch.no_grad():
        expected = generic.generator(z)
        assert expected.shape == (6, *_image_shape(generic.config))
        for y in range(4):
            torch.testing.assert_close(cond(z, torch.full((6,), y)), expected)
        torch.testing.assert_close(plain(z), expected)
    cold, _ = build_plgmi_networks(generic.config, 4, None)
    assert not torch.allclose(cold.eval()(z, torch.zeros(6, dtype=torch.long)), expected)


def _image_shape(cfg: PriorConfig) -> tuple[int, int, int]:
    return (cfg.channels, cfg.image_size, cfg.image_size)


def test_the_conditional_generator_follows_the_stage_count():
    cfg = PriorConfig(image_size=64, channels=3, latent_dim=16, gen_width=4, disc_width=4, stages=4)
    gen = ConditionalGenerator(cfg, 4)
    names = [name for name, _ in gen.named_children()]
    assert names == ["linear", "bn0", "unflatten", "up1", "bn1", "up2", "bn2", "up3", "bn3", "refine", "bn4", "up4"]
    assert gen.unflatten.unflattened_size == (64, 4, 4)
    assert gen(torch.randn(3, 16), torch.tensor([0, 1, 3])).shape == (3, 3, 64, 64)
    with pytest.raises(ValueError, match="stages"):
        gen.warm_start(Generator(PriorConfig(image_size=64, channels=3, latent_dim=16, gen_width=4, stages=2)))


@pytest.mark.parametrize("stages", [2, 4])
def test_discriminator_bodies_are_copied_from_the_generic_prior(stages):
    generic = _generic(stages)
    _, proj = build_plgmi_networks(generic.config, 4, generic)
    _, semi = build_kedmi_networks(generic.config, 4, generic)
    generic_convs = [m.weight for m in generic.discriminator.net if isinstance(m, nn.Conv2d)]
    semi_convs = [m.weight for m in semi.body if isinstance(m, nn.Conv2d)]
    proj_convs = [m.parametrizations.weight.original for m in proj.body if isinstance(m, nn.Conv2d)]
    assert len(generic_convs) == len(semi_convs) == len(proj_convs) == stages
    for generic_conv, semi_conv, proj_conv in zip(generic_convs, semi_convs, proj_convs, strict=True):
        assert torch.equal(semi_conv, generic_conv) and semi_conv.requires_grad
        assert torch.equal(proj_conv, generic_conv)  # spectral norm wraps it
    assert torch.equal(proj.head.parametrizations.weight.original, generic.discriminator.net[-1].weight)
    x = torch.rand(2, *_image_shape(generic.config))
    assert proj(x, torch.tensor([0, 3])).shape == (2,) and semi(x).shape == (2, 5)


def test_plgmi_generator_gets_the_inversion_loss_gradient(toy_setup):
    """One iteration, same seed: D is identical (updated first), G differs only through alpha·L_inv."""
    images, target, generic = toy_setup
    runs = [train_plgmi(target, images, _plg(iterations=1, top_k=20, alpha=a), generic, progress=False)
            for a in (0.0, 1.0)]  # fmt: skip
    d0, d1 = (r.prior.discriminator.state_dict() for r in runs)
    assert all(torch.equal(d0[k], d1[k]) for k in d0)
    g0, g1 = (r.prior.generator.state_dict() for r in runs)
    changed = [k for k in g0 if g0[k].is_floating_point() and not torch.equal(g0[k], g1[k])]
    assert "linear.weight" in changed and "up2.weight" in changed
    assert runs[0].history["g_inv"] == runs[1].history["g_inv"]  # same first batch, same loss value


def test_plgmi_training_lowers_the_inversion_loss(toy_setup):
    images, target, generic = toy_setup
    cfg = _plg(iterations=80, top_k=30, alpha=1.0, lr_g=1e-3, lr_d=1e-3)
    result = train_plgmi(target, images, cfg, generic, progress=False)
    inv = result.history["g_inv"]
    assert sum(inv[-10:]) / 10 < sum(inv[:10]) / 10
    assert result.info["pseudo_labels_per_class"] == [30] * 4
    labels = torch.arange(4).repeat_interleave(16)
    agree = (target(result.prior.sample(labels, seed=0)).argmax(1) == labels).float().mean()
    assert agree > 0.4, agree  # G(·, y) lands in the target's class y well above chance (0.25)


def test_kedmi_discriminator_has_k_plus_one_outputs_with_a_fixed_fake_logit():
    cfg = toy.tiny_prior_config()
    disc = SemiSupervisedDiscriminator(cfg, num_classes=4)
    out = disc(torch.rand(5, 1, toy.SIZE, toy.SIZE))
    assert out.shape == (5, 5) and torch.equal(out[:, 4], torch.zeros(5))


def test_kedmi_discriminator_loss_uses_the_targets_probabilities():
    torch.manual_seed(0)
    disc = SemiSupervisedDiscriminator(toy.tiny_prior_config(), num_classes=4)
    real, fake = torch.rand(6, 1, 12, 12), torch.rand(6, 1, 12, 12)
    soft = torch.rand(6, 4).softmax(1)
    total, soft_term = discriminator_loss(disc, real, soft, fake)
    logits_real, logits_fake = disc.class_logits(real), disc.class_logits(fake)
    expected_soft = -(soft * logits_real.log_softmax(1)).sum(1).mean()
    lse_r, lse_f = logits_real.logsumexp(1), logits_fake.logsumexp(1)
    sp = torch.nn.functional.softplus
    expected_total = expected_soft + 0.5 * (sp(lse_r).mean() - lse_r.mean() + sp(lse_f).mean())
    torch.testing.assert_close(soft_term, expected_soft)
    torch.testing.assert_close(total, expected_total)
    _, other = discriminator_loss(disc, real, soft.flip(1), fake)
    assert not torch.allclose(other, soft_term)


def test_kedmi_discriminator_learns_the_targets_labels(toy_setup):
    images, target, generic = toy_setup
    cfg = KEDMISection(iterations=60, lr_g=1e-3, lr_d=1e-3, **TINY)
    result = train_kedmi(target, images, cfg, generic, progress=False)
    assert result.prior.discriminator(torch.rand(3, 1, 12, 12)).shape == (3, target.num_classes + 1)
    assert result.info["disc_target_agreement"] >= 0.9
    assert sum(result.history["d_soft"][-10:]) < sum(result.history["d_soft"][:10])


@pytest.mark.parametrize("train", [train_plgmi, train_kedmi])
def test_training_is_deterministic_per_seed_and_leaves_the_callers_rng(train, toy_setup):
    images, target, generic = toy_setup
    section = _plg if train is train_plgmi else (lambda **kw: KEDMISection(**TINY, **kw))
    rng = torch.get_rng_state()
    first = train(target, images, section(iterations=3), generic, progress=False)
    assert torch.equal(torch.get_rng_state(), rng)
    again = train(target, images, section(iterations=3), generic, progress=False)
    other = train(target, images, section(iterations=3, seed=1), generic, progress=False)
    assert first.history == again.history and first.history != other.history
    assert all(len(v) == 3 for v in first.history.values()) and first.seconds > 0
    for a, b in zip(first.prior.generator.state_dict().values(), again.prior.generator.state_dict().values(),
                    strict=True):  # fmt: skip
        assert torch.equal(a, b)


@pytest.mark.parametrize("train", [train_plgmi, train_kedmi])
def test_trained_prior_is_frozen(train, toy_setup):
    images, target, generic = toy_setup
    section = _plg if train is train_plgmi else (lambda **kw: KEDMISection(**TINY, **kw))
    prior = train(target, images, section(iterations=2), generic, progress=False).prior
    assert prior.num_classes == 4 and prior.latent_dim == 16 and prior.image_shape == (1, 12, 12)
    for net in (prior.generator, prior.discriminator):
        assert not net.training and not any(p.requires_grad for p in net.parameters())


def test_warm_start_flag_and_architecture_must_match_the_prior(toy_setup):
    images, target, generic = toy_setup
    with pytest.raises(ValueError, match="warm_start"):
        train_plgmi(target, images, _plg(iterations=1), None, progress=False)
    with pytest.raises(ValueError, match="warm_start"):
        train_kedmi(target, images, KEDMISection(iterations=1, warm_start=False, **TINY), generic, progress=False)
    with pytest.raises(ValueError, match="latent_dim"):
        train_kedmi(target, images, KEDMISection(iterations=1, **{**TINY, "latent_dim": 8}), generic, progress=False)
    cold = train_plgmi(target, images, _plg(iterations=1, warm_start=False), None, progress=False)
    assert cold.info["warm_start"] is False
    with pytest.raises(TypeError, match="uint8"):
        train_plgmi(target, images.float(), _plg(iterations=1), generic, progress=False)


def test_sections_forbid_unknown_keys_and_bad_values():
    section = TargetGANSection.model_validate({"plgmi": {"iterations": 300}, "kedmi": {}})
    assert section.plgmi.iterations == 300 and section.kedmi.iterations == KEDMISection().iterations
    with pytest.raises(ValidationError, match="alpah"):
        PLGMISection.model_validate({"alpah": 0.2})
    with pytest.raises(ValidationError, match="top_k"):
        PLGMISection(top_k=0)
    with pytest.raises(ValidationError, match="inv_batch_size"):
        PLGMISection(batch_size=16, inv_batch_size=32)
    with pytest.raises(ValidationError, match="entropy_weight"):
        KEDMISection(entropy_weight=-1.0)


@pytest.mark.parametrize("make", [toy_gan.tiny_conditional_prior, toy_gan.tiny_kedmi_prior])
def test_checkpoint_round_trip_gives_identical_outputs(make, tmp_path):
    prior = make(seed=2)
    path = tmp_path / "gan.pt"
    save_target_gan(path, prior, extra={"params_hash": "abc"})
    loaded, meta = load_target_gan(path)
    assert type(loaded) is type(prior) and loaded.config == prior.config and loaded.num_classes == 4
    assert meta["extra"] == {"params_hash": "abc"} and meta["kind"] in {"plgmi_gan", "kedmi_gan"}
    if isinstance(prior, ConditionalPrior):
        labels = torch.tensor([0, 1, 2, 3])
        x = prior.sample(labels, seed=1)
        assert torch.equal(loaded.sample(labels, seed=1), x)
        assert torch.equal(loaded.discriminator(x, labels), prior.discriminator(x, labels))
    else:
        assert isinstance(prior, KEDMIPrior)
        x = prior.sample(4, seed=1)
        assert torch.equal(loaded.sample(4, seed=1), x)
        assert torch.equal(loaded.discriminator(x), prior.discriminator(x))
    assert [p.name for p in tmp_path.iterdir()] == ["gan.pt"]


@pytest.mark.parametrize("build", [build_plgmi_networks, build_kedmi_networks])
def test_a_four_stage_gan_round_trips_through_its_checkpoint(build, tmp_path):
    generic = _generic(4)
    gen, disc = build(generic.config, 4, generic)
    prior = (ConditionalPrior if build is build_plgmi_networks else KEDMIPrior)(gen, disc, generic.config, 4)
    save_target_gan(tmp_path / "gan.pt", prior)
    assert torch.load(tmp_path / "gan.pt", weights_only=True)["config"]["stages"] == 4
    loaded, _ = load_target_gan(tmp_path / "gan.pt")
    assert loaded.config == prior.config and loaded.image_shape == (3, 64, 64)
    labels = torch.tensor([0, 1, 2, 3])
    sample = (lambda p: p.sample(labels, seed=1)) if build is build_plgmi_networks else (lambda p: p.sample(4, seed=1))
    x = sample(prior)
    assert x.shape == (4, 3, 64, 64) and torch.equal(sample(loaded), x)
    if build is build_plgmi_networks:
        assert torch.equal(loaded.discriminator(x, labels), prior.discriminator(x, labels))
    else:
        assert torch.equal(loaded.discriminator(x), prior.discriminator(x))


def test_the_stage_count_travels_from_the_section_and_must_match_the_prior(toy_setup):
    images, target, generic = toy_setup
    assert "stages" not in KEDMISection().model_dump() and KEDMISection(stages=4).model_dump()["stages"] == 4
    with pytest.raises(ValueError, match="stages: 1 vs prior 2"):
        train_kedmi(target, images, KEDMISection(iterations=1, stages=1, **TINY), generic, progress=False)
    with pytest.raises(ValueError, match=r"image_size must be divisible by 2\^stages = 8"):  # the target's 12 px
        train_plgmi(target, images, _plg(iterations=1, stages=3, warm_start=False), None, progress=False)
    cold = train_kedmi(target, images, KEDMISection(iterations=1, stages=1, warm_start=False, **TINY), None,
                       progress=False).prior  # fmt: skip
    assert cold.config.stages == 1 and cold.generator.project[-1].unflattened_size == (16, 6, 6)
    with pytest.raises(ValidationError, match="stages"):
        PLGMISection(stages=0)


def test_loading_a_bad_file_names_it(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="bad.pt"):
        load_target_gan(bad)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_target_gan(tmp_path / "missing.pt")
    torch.save({"format_version": 1, "kind": "gan_prior"}, tmp_path / "generic.pt")
    with pytest.raises(ValueError, match="generic.pt"):
        load_target_gan(tmp_path / "generic.pt")
    with pytest.raises(TypeError, match="ConditionalPrior or KEDMIPrior"):
        save_target_gan(tmp_path / "x.pt", toy.untrained_prior())  # type: ignore[arg-type]
