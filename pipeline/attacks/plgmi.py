"""PLG-MI reconstruction: optimise the latents of a conditional GAN trained against the target.

The GAN (``pipeline.target_gan.train_plgmi``) already maps (z, y) near class y of the target, so
the attack only searches z of G(z, y): identity loss (max-margin by default) averaged over
augmented views, Adam, z clamped to ±latent_bound; many candidates per class, then PPA-style
selection by robust confidence. Variants (registry presets):

- ``plgmi``: max-margin loss, as in the paper (``identity_loss="logit"`` gives LOMMA's −f_y).
- ``plgmi_confidence``: aim at CALoR's p* (``confidence_aware``; the suite passes the defense's
  p* when the entry has ``adapt_to_defense: true``).
- ``plgmi_bpda``: BPDA through the head's tanh.
- ``plgmi_features``: pre-head feature anchors from public images (needs ``public_images``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pipeline.attacks.adaptive import MultiViewLatentAttack
from pipeline.attacks.augment import robust_scores
from pipeline.attacks.base import (
    Access,
    AttackBudget,
    AttackResult,
    LabelOnlyTarget,
    Prior,
    as_white_box,
    select_top,
)
from pipeline.attacks.registry import register_attack
from pipeline.attacks.sharding import RowBlock
from pipeline.defenses.calor import AUTHORS_TARGET_CONFIDENCE
from pipeline.target_gan.networks import ConditionalPrior

PLGMI_BUDGET = AttackBudget(steps=120, restarts=10, samples_per_class=5)


@register_attack("plgmi", budget=PLGMI_BUDGET)
@register_attack(
    "plgmi_confidence", budget=PLGMI_BUDGET, identity_loss="confidence_aware",
    target_confidence=AUTHORS_TARGET_CONFIDENCE,
)  # fmt: skip
@register_attack("plgmi_bpda", budget=PLGMI_BUDGET, bpda=True)
@register_attack("plgmi_features", budget=PLGMI_BUDGET, feature_weight=10.0)
@dataclass(kw_only=True)
class PLGMIAttack(MultiViewLatentAttack):
    """Latent search in a target-specific conditional GAN G(z, y).

    Paper: Yuan et al., "Pseudo Label-Guided Model Inversion Attack via Conditional Generative
    Adversarial Network" (PLG-MI), AAAI 2023; selection from PPA (Struppek et al., ICML 2022);
    logit loss from LOMMA (Nguyen et al., CVPR 2023); BPDA from Athalye et al., ICML 2018.

    Loss per step: mean over ``views`` augmented views of identity(T(aug(G(z, y))), y)
    [+ feature_weight · mean_i (φ_T(aug(G(z, y)))_i − anchor_y,i)²]. Needs a ``ConditionalPrior``
    trained against the attacked target as ``generator=``.
    """

    requires = Access.WHITE_BOX
    prior_kind = "plgmi"

    def _run(
        self, target: LabelOnlyTarget, classes: torch.Tensor, budget: AttackBudget,
        prior: Prior | None, public_images: torch.Tensor | None, block: RowBlock,
    ) -> AttackResult:  # fmt: skip
        target = as_white_box(target)
        if not isinstance(prior, ConditionalPrior):
            raise TypeError(f"PLGMIAttack needs a ConditionalPrior, got {type(prior).__name__}")
        setup = self._loss_setup(target, classes, block, public_images)
        gen = prior.generator
        labels = block.take(classes.repeat_interleave(budget.restarts))  # class-major: (classes × restarts,)
        z = block.randn(prior.latent_dim).clamp_(-self.latent_bound, self.latent_bound)
        z.requires_grad_()
        optimizer = torch.optim.Adam([z], lr=self.lr)
        history: list[float] = []
        for _ in range(budget.steps):
            loss = self._identity_term(setup, gen(z, labels), labels, self.views)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                z.clamp_(-self.latent_bound, self.latent_bound)
            history.append(block.loss_value(loss))

        with torch.no_grad():
            images = gen(z, labels).clamp(0, 1)
        scores = robust_scores(target, images, labels, setup.augment, self.score_views, use_labels=False, block=block)
        images, labels, scores = select_top(images, labels, scores, budget.restarts, budget.samples_per_class)
        return AttackResult(images, labels, scores, history, info=setup.info)
