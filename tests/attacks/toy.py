"""Tiny, fast fixtures for attack tests: a separable 4-class toy task on 12×12 images.

Classes: 0 horizontal bar, 1 vertical bar, 2 hollow frame, 3 centre blob; each sample is shifted by
up to one pixel and noised, so the judge must learn shapes, not pixel positions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.models import Classifier, HeadConfig, ModelConfig, create_model
from pipeline.prior import ImagePrior, PriorConfig
from pipeline.prior.networks import Discriminator, Generator

SIZE = 12
NUM_CLASSES = 4


def toy_templates() -> torch.Tensor:
    """The four class shapes (4, 12, 12) in [0, 1]."""
    templates = torch.zeros(NUM_CLASSES, SIZE, SIZE)
    templates[0, 5:7, 1:11] = 1
    templates[1, 1:11, 5:7] = 1
    templates[2, 2:10, 2:10] = 1
    templates[2, 4:8, 4:8] = 0
    templates[3, 4:8, 4:8] = 1
    return templates


def toy_images(n_per_class: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images (4·n, 1, 12, 12) and their labels."""
    g = torch.Generator().manual_seed(seed)
    templates = toy_templates()
    labels = torch.arange(NUM_CLASSES).repeat_interleave(n_per_class)
    images = templates[labels]
    shifts = torch.randint(-1, 2, (len(labels), 2), generator=g)
    images = torch.stack([img.roll(tuple(s.tolist()), dims=(0, 1)) for img, s in zip(images, shifts, strict=True)])
    images = (0.8 * images + 0.15 * torch.rand(images.shape, generator=g)).clamp(0, 1)
    return (images.unsqueeze(1) * 255).round().to(torch.uint8), labels


def tiny_classifier(arch: str = "convnet", seed: int = 0, low_rank: bool = True) -> Classifier:
    head = HeadConfig(kind="low_rank", rank=3) if low_rank else HeadConfig()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return create_model(ModelConfig(arch=arch, num_classes=NUM_CLASSES, image_size=SIZE, width=8, head=head)).eval()


def train_classifier(
    model: Classifier, images: torch.Tensor, labels: torch.Tensor, steps: int, seed: int
) -> Classifier:
    """A few Adam steps of plain cross-entropy on random batches; enough for the toy task."""
    x = images.float() / 255
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
        model.train()
        for _ in range(steps):
            batch = torch.randint(0, len(x), (64,))
            loss = F.cross_entropy(model(x[batch]), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval()


def tiny_prior_config(**overrides: object) -> PriorConfig:
    params = dict(image_size=SIZE, channels=1, latent_dim=16, gen_width=8, disc_width=8, batch_size=32, seed=0)
    params.update(overrides)
    return PriorConfig(**params)


def untrained_prior(seed: int = 0) -> ImagePrior:
    cfg = tiny_prior_config(seed=seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return ImagePrior(Generator(cfg), Discriminator(cfg), cfg)


class TemplateGenerator(nn.Module):
    """A perfect prior of the toy distribution, instantly: z → softmax(sharpness · z[:4])-weighted
    blend of the class templates. Stands in for a GAN trained on public toy data (which would
    take longer than a unit test should)."""

    def __init__(self, latent_dim: int = 8, sharpness: float = 3.0):
        super().__init__()
        self.latent_dim = latent_dim
        self.sharpness = sharpness
        self.register_buffer("templates", toy_templates().unsqueeze(1))  # (4, 1, 12, 12)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        weights = (self.sharpness * z[:, :NUM_CLASSES]).softmax(1)
        return 0.05 + 0.8 * torch.einsum("bk,kchw->bchw", weights, self.templates)


class NeutralDiscriminator(nn.Module):
    """Scores every image alike: the realism term carries no information for the template prior."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.new_zeros(len(x))


def template_prior() -> ImagePrior:
    cfg = tiny_prior_config(latent_dim=8)
    return ImagePrior(TemplateGenerator(cfg.latent_dim), NeutralDiscriminator(), cfg)  # type: ignore[arg-type]
