"""GAN image prior for the attacker: trained once on public images, then fixed."""

from pipeline.prior.networks import Discriminator, Generator, ImagePrior, PriorConfig
from pipeline.prior.storage import load_prior, save_image_grid, save_prior
from pipeline.prior.train import PriorResult, images_to_float, train_prior

__all__ = [
    "Discriminator", "Generator", "ImagePrior", "PriorConfig", "PriorResult", "images_to_float",
    "load_prior", "save_image_grid", "save_prior", "train_prior",
]  # fmt: skip
