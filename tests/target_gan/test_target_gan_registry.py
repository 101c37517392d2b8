"""The kind → GAN registry: a suite gets exactly the target-specific GANs its attacks name."""

from __future__ import annotations

import pytest
import torch

from pipeline.target_gan import (
    TARGET_GANS,
    ConditionalPrior,
    KEDMIPrior,
    TargetGANSection,
    load_target_gans,
    save_target_gan,
    train_target_gans,
)
from tests.attacks import toy

TINY = dict(batch_size=16, latent_dim=16, gen_width=8, disc_width=8, iterations=2)


@pytest.fixture(scope="module")
def trained():
    images, labels = toy.toy_images(10, seed=0)
    target = toy.train_classifier(toy.tiny_classifier("convnet", seed=3, low_rank=False), images, labels, 20, seed=3)
    section = TargetGANSection(plgmi={**TINY, "inv_batch_size": 8, "top_k": 8}, kedmi=TINY)
    gans = train_target_gans(target, images, section, toy.untrained_prior(seed=0), {"generic", "plgmi", "kedmi"},
                             progress=False)  # fmt: skip
    return gans


def test_only_the_target_specific_kinds_asked_for_are_trained(trained):
    assert TARGET_GANS.names() == ["kedmi", "plgmi"]
    assert set(trained) == {"plgmi", "kedmi"}  # "generic" is the public prior, never trained here
    assert isinstance(trained["plgmi"], ConditionalPrior) and isinstance(trained["kedmi"], KEDMIPrior)
    assert trained["plgmi"].num_classes == trained["kedmi"].num_classes == toy.NUM_CLASSES


def test_a_stage_directory_loads_back_by_kind_and_a_swapped_file_is_named(trained, tmp_path):
    for kind, prior in trained.items():
        save_target_gan(tmp_path / f"{kind}.pt", prior)
    loaded = load_target_gans(tmp_path, {"plgmi", "kedmi", "generic"})
    z, y = torch.randn(3, 16), torch.tensor([0, 1, 2])
    assert torch.equal(loaded["plgmi"].generator(z, y), trained["plgmi"].generator(z, y))
    assert load_target_gans(tmp_path, {"generic"}) == {}  # nothing target-specific asked for, nothing read
    save_target_gan(tmp_path / "plgmi.pt", trained["kedmi"])
    with pytest.raises(ValueError, match=r"plgmi\.pt: holds a 'kedmi_gan'"):
        load_target_gans(tmp_path, {"plgmi"})
    with pytest.raises(FileNotFoundError, match="missing"):
        load_target_gans(tmp_path / "missing", {"kedmi"})
