"""BREP-MI: label-only inversion by boundary repulsion in the GAN's latent space.

Only top-1 labels are observed. Each latent starts at a random z the target already labels y,
then repeatedly probes a sphere of radius R around itself: points that leave class y mark the
nearby decision boundary, so z steps away from them (toward the inside of the class region);
when every probe stays inside, the region is at least R deep there and R grows. A latent far
from every boundary is a class-representative input.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pipeline.attacks.augment import AugmentedAttack, robust_scores
from pipeline.attacks.base import Access, AttackBudget, AttackResult, LabelOnlyTarget, check_param, select_top
from pipeline.attacks.registry import register_attack
from pipeline.attacks.sharding import RowBlock
from pipeline.prior import ImagePrior


@register_attack("brep", budget=AttackBudget(steps=25, restarts=5, samples_per_class=5))
@dataclass(kw_only=True)
class BREPAttack(AugmentedAttack):
    """Boundary-repelling label-only attack, vectorised over all classes and restarts.

    Paper: Kahla et al., "Label-Only Model Inversion Attacks via Boundary Repulsion", CVPR 2022.

    Per step and latent: probe ``sphere_points`` points z + R·u (u uniform on the unit sphere);
    if all are labelled y, R ← min(R · radius_growth, max_radius); otherwise step
    z ← z + step_size · R · d/‖d‖ with d = −mean of the directions u that left class y (the
    paper's estimate with Φ = −1 outside, 0 inside), kept only if the target still labels it y.
    ``history`` is −mean R per step (a progress measure: it can only go down).
    """

    requires = Access.LABEL_ONLY
    uses_prior = True

    sphere_points: int = 16
    initial_radius: float = 1.0
    radius_growth: float = 1.3
    max_radius: float = 8.0
    step_size: float = 0.5
    latent_bound: float = 2.0
    init_batch: int = 256
    init_rounds: int = 20

    def _check_params(self, problems: list[str]) -> None:
        super()._check_params(problems)
        for name in ("sphere_points", "init_batch", "init_rounds"):
            value = getattr(self, name)
            check_param(problems, isinstance(value, int) and value > 0, name, value, "be a positive int")
        for name in ("initial_radius", "step_size", "latent_bound"):
            value = getattr(self, name)
            check_param(problems, value > 0, name, value, "be > 0")
        check_param(problems, self.radius_growth > 1, "radius_growth", self.radius_growth, "be > 1")
        check_param(
            problems, self.max_radius >= self.initial_radius, "max_radius", self.max_radius,
            f"be >= initial_radius ({self.initial_radius})",
        )  # fmt: skip

    def _run(
        self, target: LabelOnlyTarget, classes: torch.Tensor, budget: AttackBudget,
        prior: ImagePrior | None, public_images: torch.Tensor | None, block: RowBlock,
    ) -> AttackResult:  # fmt: skip
        if prior is None:
            raise ValueError("generator is required by BREPAttack, got None")
        gen = prior.generator
        queries_before = target.queries
        labels = block.take(classes.repeat_interleave(budget.restarts))
        with torch.no_grad():
            z, found = self._initial_latents(target, gen, labels, prior.latent_dim, block)
            radius = torch.full((len(labels),), self.initial_radius)
            history: list[float] = []
            for _ in range(budget.steps):
                self._repulsion_step(target, gen, z, radius, labels, found, block)
                history.append(-block.mean(radius))
            images = gen(z).clamp(0, 1)
        augment = self._augmentation()
        scores = robust_scores(target, images, labels, augment, self.score_views, use_labels=True, block=block)
        found_per_class = block.gather_rows(found.view(-1, budget.restarts).sum(1).tolist())
        images, labels, scores = select_top(images, labels, scores, budget.restarts, budget.samples_per_class)
        info = {
            "queries": int(block.shard.sum(torch.tensor(target.queries - queries_before))),
            "init_found_per_class": found_per_class,
            "unfound_classes": [c for c, n in zip(classes.tolist(), found_per_class, strict=True) if n == 0],
        }
        return AttackResult(images, labels, scores, history, info=info)

    def _initial_latents(
        self, target: LabelOnlyTarget, gen: torch.nn.Module, labels: torch.Tensor, latent_dim: int, block: RowBlock
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Random latents the target labels y; rows never found keep a random latent (flagged).

        Every rank draws each round's candidates and labels its share of them; the rounds end when
        every rank's rows are found, so all ranks draw what one process draws.
        """
        z = block.randn(latent_dim).clamp_(-self.latent_bound, self.latent_bound)
        found = torch.zeros(len(labels), dtype=torch.bool)
        for _ in range(self.init_rounds):
            if block.shard.all_true(found):
                break
            candidates = torch.randn(self.init_batch, latent_dim).clamp_(-self.latent_bound, self.latent_bound)
            predicted = block.shard.everywhere(lambda c: target.predict_labels(gen(c)), candidates)
            for c in labels[~found].unique().tolist():
                rows = ((labels == c) & ~found).nonzero().squeeze(1)
                hits = (predicted == c).nonzero().squeeze(1)[: len(rows)]
                z[rows[: len(hits)]] = candidates[hits]
                found[rows[: len(hits)]] = True
        return z, found

    def _repulsion_step(
        self, target: LabelOnlyTarget, gen: torch.nn.Module, z: torch.Tensor, radius: torch.Tensor,
        labels: torch.Tensor, active: torch.Tensor, block: RowBlock,
    ) -> None:  # fmt: skip
        """One in-place update of ``z`` and ``radius`` for the ``active`` latents."""
        n, dim = z.shape
        directions = block.randn(self.sphere_points, dim)
        directions = directions / directions.norm(dim=2, keepdim=True)
        probes = (z.unsqueeze(1) + radius.view(n, 1, 1) * directions).clamp(-self.latent_bound, self.latent_bound)
        outside = target.predict_labels(gen(probes.view(-1, dim))).view(n, -1) != labels.unsqueeze(1)
        all_inside = ~outside.any(1)
        grow = active & all_inside
        radius[grow] = (radius[grow] * self.radius_growth).clamp(max=self.max_radius)

        away = -(outside.float().unsqueeze(2) * directions).mean(1)  # (n, dim), away from the boundary
        norm = away.norm(dim=1, keepdim=True)
        move = active & ~all_inside & (norm.squeeze(1) > 0)
        if not move.any():
            return
        step = self.step_size * radius.unsqueeze(1) * away / norm.clamp_min(1e-12)
        proposal = (z[move] + step[move]).clamp(-self.latent_bound, self.latent_bound)
        keep = target.predict_labels(gen(proposal)) == labels[move]
        rows = move.nonzero().squeeze(1)[keep]
        z[rows] = proposal[keep]
