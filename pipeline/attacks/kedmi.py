"""KED-MI reconstruction: learn a per-class latent distribution under a target-specific GAN.

The GAN (``pipeline.target_gan.train_kedmi``) has a K+1-output discriminator that distilled the
target's soft labels on public data. The attack optimises, per class, a Gaussian N(μ, σ²) over
z with the reparametrisation trick, z = μ + σ·ε clamped to ±latent_bound, minimising
E_ε[L_prior(G(z)) + identity_weight · L_id(T(aug(G(z))), y)], L_prior = softplus(−lse D(G(z))).
The reconstructions are fresh samples of the learned distributions, ``restarts`` per class, of
which the best ``samples_per_class`` by robust confidence are kept. Variants (registry presets):
``kedmi`` (max-margin), ``kedmi_confidence`` (CALoR's p*, ``adapt_to_defense``), ``kedmi_bpda``,
``kedmi_features`` (needs ``public_images``); ``identity_loss="logit"`` gives LOMMA's loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from pipeline.attacks.adaptive import MultiViewLatentAttack
from pipeline.attacks.augment import robust_scores
from pipeline.attacks.base import (
    Access,
    AttackBudget,
    AttackResult,
    LabelOnlyTarget,
    Prior,
    as_white_box,
    check_param,
    select_top,
)
from pipeline.attacks.registry import register_attack
from pipeline.attacks.sharding import RowBlock
from pipeline.defenses.calor import AUTHORS_TARGET_CONFIDENCE
from pipeline.target_gan.networks import KEDMIPrior, realness

KEDMI_BUDGET = AttackBudget(steps=120, restarts=10, samples_per_class=5)


@register_attack("kedmi", budget=KEDMI_BUDGET)
@register_attack(
    "kedmi_confidence", budget=KEDMI_BUDGET, identity_loss="confidence_aware",
    target_confidence=AUTHORS_TARGET_CONFIDENCE,
)  # fmt: skip
@register_attack("kedmi_bpda", budget=KEDMI_BUDGET, bpda=True)
@register_attack("kedmi_features", budget=KEDMI_BUDGET, feature_weight=10.0)
@dataclass(kw_only=True)
class KEDMIAttack(MultiViewLatentAttack):
    """Distributional latent search under a target-specific semi-supervised GAN.

    Paper: Chen et al., "Knowledge-Enriched Distributional Model Inversion Attacks" (KED-MI),
    ICCV 2021; selection from PPA (Struppek et al., ICML 2022); logit loss from LOMMA (Nguyen et
    al., CVPR 2023); BPDA from Athalye et al., ICML 2018. Needs a ``KEDMIPrior`` trained against
    the attacked target as ``generator=``.
    """

    requires = Access.WHITE_BOX
    prior_kind = "kedmi"

    identity_weight: float = 100.0  # λ of the paper
    init_log_sigma: float = 0.0
    # Independent (μ, σ) per class, each from a random μ (the authors re-run the search from several
    # seeds): one distribution per class collapsed to a single mode on Fashion-MNIST — all of a
    # class's samples judged right or all wrong.
    distributions: int = 5

    def _check_params(self, problems: list[str]) -> None:
        super()._check_params(problems)
        check_param(problems, self.identity_weight > 0, "identity_weight", self.identity_weight, "be > 0")
        check_param(problems, -10 <= self.init_log_sigma <= 2, "init_log_sigma", self.init_log_sigma, "be in [-10, 2]")
        check_param(problems, isinstance(self.distributions, int) and self.distributions >= 1, "distributions",
                    self.distributions, "be a positive int")  # fmt: skip

    def _run(
        self, target: LabelOnlyTarget, classes: torch.Tensor, budget: AttackBudget,
        prior: Prior | None, public_images: torch.Tensor | None, block: RowBlock,
    ) -> AttackResult:  # fmt: skip
        target = as_white_box(target)
        if not isinstance(prior, KEDMIPrior):
            raise TypeError(f"KEDMIAttack needs a KEDMIPrior, got {type(prior).__name__}")
        setup = self._loss_setup(target, classes, block, public_images)
        gen, disc = prior.generator, prior.discriminator
        labels = block.take(classes.repeat_interleave(budget.restarts))  # class-major: (classes × restarts,)
        per_class = min(self.distributions, budget.restarts)
        distributions = block.shard.block(len(classes), per_class)  # the same classes' (μ, σ) rows
        local_classes = distributions.count // per_class
        # candidate j of class i samples distribution (i, j mod per_class)
        rows = (torch.arange(local_classes).repeat_interleave(budget.restarts) * per_class
                + torch.arange(budget.restarts).repeat(local_classes) % per_class)  # fmt: skip
        mu = distributions.randn(prior.latent_dim).requires_grad_()
        log_sigma = torch.full((distributions.count, prior.latent_dim), self.init_log_sigma, requires_grad=True)
        optimizer = torch.optim.Adam([mu, log_sigma], lr=self.lr)

        def draw() -> torch.Tensor:  # (N, latent) samples of each row's class distribution
            z = mu[rows] + log_sigma[rows].exp() * block.randn(prior.latent_dim)
            return z.clamp(-self.latent_bound, self.latent_bound)

        history: list[float] = []
        for _ in range(budget.steps):
            x = gen(draw())
            prior_loss = block.part(F.softplus(-realness(disc.class_logits(x))).mean())
            loss = prior_loss + self.identity_weight * self._identity_term(setup, x, labels, self.views)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            history.append(block.loss_value(loss))

        with torch.no_grad():
            images = gen(draw()).clamp(0, 1)
        scores = robust_scores(target, images, labels, setup.augment, self.score_views, use_labels=False, block=block)
        images, labels, scores = select_top(images, labels, scores, budget.restarts, budget.samples_per_class)
        info = {**setup.info, "sigma_mean": distributions.mean(log_sigma.detach().exp())}
        return AttackResult(images, labels, scores, history, info=info)
