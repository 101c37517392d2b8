"""Target-specific GAN priors (PLG-MI, KED-MI): trained against one target, then fixed.

Unlike the generic prior (``pipeline.prior``), these GANs depend on the attacked model, so every
target (baseline, each hardened model) gets its own; a warm start from the generic prior keeps
that cheap. This package never imports ``pipeline.attacks`` (the attacks import it).
"""

from pipeline.target_gan.common import TargetGANResult, pseudo_label
from pipeline.target_gan.config import KEDMISection, PLGMISection, TargetGANSection
from pipeline.target_gan.kedmi import train_kedmi
from pipeline.target_gan.networks import (
    ConditionalGenerator,
    ConditionalPrior,
    KEDMIPrior,
    ProjectionDiscriminator,
    SemiSupervisedDiscriminator,
)
from pipeline.target_gan.plgmi import train_plgmi
from pipeline.target_gan.registry import TARGET_GANS, load_target_gans, train_one, train_target_gans
from pipeline.target_gan.storage import load_target_gan, save_target_gan

__all__ = [
    "ConditionalGenerator", "ConditionalPrior", "KEDMIPrior", "KEDMISection", "PLGMISection",
    "ProjectionDiscriminator", "SemiSupervisedDiscriminator", "TARGET_GANS", "TargetGANResult", "TargetGANSection",
    "load_target_gan", "load_target_gans", "pseudo_label", "save_target_gan", "train_kedmi", "train_one",
    "train_plgmi", "train_target_gans",
]  # fmt: skip
