"""params.yaml section ``target_gan``: one subsection per target-specific GAN.

The architecture fields (latent_dim, gen_width, disc_width, stages) must match the generic prior when
warm-starting from it (a mismatch is an error, not a silent re-initialisation); image size and
channels always come from the attacked target.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, SerializerFunctionWrapHandler, model_serializer, model_validator

from pipeline.config import Section
from pipeline.prior.networks import DEFAULT_STAGES, omit_default_stages


class GANSection(Section):
    iterations: int = Field(ge=1)  # generator updates
    batch_size: int = Field(64, ge=2)
    n_dis: int = Field(1, ge=1)  # discriminator updates per generator update
    lr_g: float = Field(gt=0)
    lr_d: float = Field(gt=0)
    beta1: float = Field(ge=0, lt=1)
    beta2: float = Field(0.999, ge=0, lt=1)
    warm_start: bool = True  # start G (and the D body) from the generic public prior
    ema_decay: float = Field(0.0, ge=0, lt=1)  # 0 = the last generator weights
    latent_dim: int = Field(64, ge=1)
    gen_width: int = Field(16, ge=1)
    disc_width: int = Field(16, ge=1)
    stages: int = Field(DEFAULT_STAGES, ge=1)  # stride-2 stages, as the prior's (image_size = base · 2^stages)
    seed: int = 0

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return omit_default_stages(handler(self), self.stages)  # the run's logged params as before the field


class PLGMISection(GANSection):
    """PLG-MI's conditional GAN (Yuan et al., AAAI 2023), scaled down for CPU.

    Defaults chosen on the class_disjoint Fashion-MNIST baseline (warm start, 1 thread; attack
    ``plgmi`` with 120 steps, 50 candidates → 40 kept per class, judged Acc@1): 300 iterations
    ≈ 50 s → 0.66; 800 iterations → 0.78 (≈ 2× the time); untrained-target control 0.035.
    """

    iterations: int = Field(300, ge=1)
    lr_g: float = Field(2e-4, gt=0)
    lr_d: float = Field(2e-4, gt=0)
    beta1: float = Field(0.0, ge=0, lt=1)
    beta2: float = Field(0.9, ge=0, lt=1)
    alpha: float = Field(0.2, ge=0)  # weight of the inversion loss in the generator loss
    inv_batch_size: int = Field(32, ge=1)  # generated images per step scored by the target (its cost dominates)
    top_k: int = Field(500, ge=1)  # pseudo-labelled public images kept per private class
    aug_crop_min: float = Field(0.8, gt=0, le=1)  # random resized crop scale range (aug_crop_min, 1)
    aug_degrees: float = Field(5.0, ge=0, le=180)

    @model_validator(mode="after")
    def _inv_batch_fits(self) -> PLGMISection:
        if self.inv_batch_size > self.batch_size:
            raise ValueError(f"inv_batch_size ({self.inv_batch_size}) must be <= batch_size ({self.batch_size})")
        return self


class KEDMISection(GANSection):
    """KED-MI's semi-supervised GAN (Chen et al., ICCV 2021), scaled down for CPU.

    On the class_disjoint baseline (1,500 iterations ≈ 125 s, attack ``kedmi`` as for PLG-MI):
    judged Acc@1 0.40 with entropy_weight 0.5 against 0.20 with the paper's 1e-4.
    """

    iterations: int = Field(1500, ge=1)
    lr_g: float = Field(2e-4, gt=0)
    lr_d: float = Field(2e-4, gt=0)
    beta1: float = Field(0.5, ge=0, lt=1)
    entropy_weight: float = Field(0.5, ge=0)  # generator: feature matching + weight · H(D(G(z))); paper 1e-4


class TargetGANSection(Section):
    plgmi: PLGMISection = Field(default_factory=PLGMISection)
    kedmi: KEDMISection = Field(default_factory=KEDMISection)
