"""The attack interface: what an attacker may see of the target, budgets, results, one verb.

ART-style: each attack is a class with declared, validated parameters and one verb, ``run``. It
declares what it needs from the target (``requires``): white-box access (gradients, logits,
features, head) or only top-1 labels. The target is handed over wrapped in an access object that
exposes exactly that much, and an attack refuses a target that cannot provide what it needs.
"""

from __future__ import annotations

import abc
import copy
import enum
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from pipeline.attacks.sharding import ClassShard, RowBlock
from pipeline.models import Classifier
from pipeline.prior import ImagePrior
from pipeline.runtime import current_runtime, on_device
from pipeline.seeding import seeded_rng
from pipeline.target_gan.networks import ConditionalPrior, KEDMIPrior

Prior = ImagePrior | ConditionalPrior | KEDMIPrior
# What an attack's ``prior_kind`` asks for as ``generator=``: the generic public GAN, or a GAN
# trained against the attacked target (pipeline.target_gan).
PRIOR_TYPES: dict[str, type] = {"generic": ImagePrior, "plgmi": ConditionalPrior, "kedmi": KEDMIPrior}


class Access(enum.Enum):
    WHITE_BOX = "white_box"  # gradients, logits, features and head
    LABEL_ONLY = "label_only"  # top-1 labels, nothing else


def _frozen_copy(model: nn.Module) -> nn.Module:
    """Eval-mode copy without parameter gradients: attacks never change or train the target."""
    frozen = copy.deepcopy(model).eval()
    for param in frozen.parameters():
        param.requires_grad_(False)
    return frozen


class LabelOnlyTarget:
    """Top-1 labels only (no logits, no gradients); counts queries for the report."""

    provides: ClassVar[frozenset[Access]] = frozenset({Access.LABEL_ONLY})

    def __init__(self, model: Classifier, batch_size: int = 512):
        if not isinstance(model, Classifier):
            raise TypeError(f"model must be a pipeline.models.Classifier, got {type(model).__name__}")
        if batch_size <= 0:
            raise ValueError(f"batch_size must be > 0, got {batch_size}")
        self._model = _frozen_copy(model)
        self._batch_size = batch_size
        cfg = model.config
        self.num_classes: int = cfg.num_classes
        self.image_shape: tuple[int, int, int] = (cfg.in_channels, cfg.image_size, cfg.image_size)
        self.queries = 0

    @torch.no_grad()
    def predict_labels(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) in [0, 1] → (B,) int64 top-1 labels."""
        self.queries += len(x)
        return torch.cat([self._model(chunk).argmax(1) for chunk in x.split(self._batch_size)])

    def to(self, device: torch.device) -> LabelOnlyTarget:
        """Move the frozen copy (never the caller's model) to ``device``; returns self."""
        self._model.to(device)
        return self


class WhiteBoxTarget(LabelOnlyTarget):
    """Full access: differentiable logits, pre-head features, the head, and the model itself."""

    provides: ClassVar[frozenset[Access]] = frozenset({Access.WHITE_BOX, Access.LABEL_ONLY})

    @property
    def model(self) -> Classifier:
        """The frozen eval-mode copy (attacks hook into it, e.g. DeepInversion's BN statistics)."""
        return self._model

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self._model.features(x)

    def head(self, feats: torch.Tensor) -> torch.Tensor:
        return self._model.head(feats)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self._model(x)

    @torch.no_grad()
    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self._model(c).softmax(1) for c in x.split(self._batch_size)])


@dataclass(frozen=True)
class AttackBudget:
    """Optimisation steps, candidates per class (restarts), and how many of them are kept."""

    steps: int
    restarts: int
    samples_per_class: int

    def __post_init__(self) -> None:
        problems = [
            f"{name} must be a positive int, got {getattr(self, name)!r}"
            for name in ("steps", "restarts", "samples_per_class")
            if not _is_positive_int(getattr(self, name))
        ]
        if not problems and self.samples_per_class > self.restarts:
            problems.append(
                f"samples_per_class ({self.samples_per_class}) must be <= restarts ({self.restarts}): "
                "samples are kept from the candidates"
            )
        if problems:
            raise ValueError("invalid AttackBudget: " + "; ".join(problems))


@dataclass
class AttackResult:
    """Kept reconstructions; ``labels`` are the attacked classes, ``scores`` the target's robust score."""

    images: torch.Tensor  # (N, C, H, W) float in [0, 1]
    labels: torch.Tensor  # (N,) int64
    scores: torch.Tensor  # (N,) float
    history: list[float]  # loss (or progress measure) per step
    seconds: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)

    def on_cpu(self) -> AttackResult:
        """The same result with its tensors on the CPU (reports, metrics and grids read them there)."""
        if self.images.device.type == "cpu":
            return self
        return replace(self, images=self.images.cpu(), labels=self.labels.cpu(), scores=self.scores.cpu())


def _is_positive_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value > 0


def check_classes(classes: Sequence[int] | torch.Tensor | np.ndarray, num_classes: int) -> torch.Tensor:
    """Validate class ids against the target and return them as an int64 tensor."""
    values = classes.tolist() if isinstance(classes, (torch.Tensor, np.ndarray)) else list(classes)
    if not values:
        raise ValueError("classes must name at least one class, got an empty sequence")
    bad = [c for c in values if not isinstance(c, (int, np.integer)) or isinstance(c, bool)]
    if bad:
        raise ValueError(f"classes must be ints, got {bad}")
    outside = [c for c in values if not 0 <= c < num_classes]
    if outside:
        raise ValueError(f"classes {outside} are not in range({num_classes}) of the target's classes")
    if len(set(values)) != len(values):
        raise ValueError(f"classes must not repeat, got {values}")
    return torch.tensor(values, dtype=torch.int64)


class Attack(abc.ABC):
    """Base class: subclasses are dataclasses whose fields are the attack's parameters.

    Subclasses set ``requires`` and ``prior_kind`` (a key of ``PRIOR_TYPES``, None = no prior),
    implement ``_check_params`` (append problems to the list, naming the parameter and the value)
    and ``_run``. ``uses_prior`` is derived: True exactly when ``prior_kind`` is not None.
    """

    requires: ClassVar[Access]
    prior_kind: ClassVar[str | None] = None
    uses_prior: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "prior_kind" not in cls.__dict__ and cls.__dict__.get("uses_prior") and cls.prior_kind is None:
            cls.prior_kind = "generic"  # an attack that only declares uses_prior = True takes the generic GAN
        if cls.prior_kind is not None and cls.prior_kind not in PRIOR_TYPES:
            raise TypeError(
                f"{cls.__name__}.prior_kind must be None or one of {sorted(PRIOR_TYPES)}, got {cls.prior_kind!r}"
            )
        cls.uses_prior = cls.prior_kind is not None

    def __post_init__(self) -> None:
        problems: list[str] = []
        self._check_params(problems)
        if problems:
            raise ValueError(f"invalid {type(self).__name__} parameters: " + "; ".join(problems))

    @property
    def uses_public_images(self) -> bool:
        """Whether ``run`` needs ``public_images`` (the feature-space attack does)."""
        return False

    @abc.abstractmethod
    def _check_params(self, problems: list[str]) -> None: ...

    @abc.abstractmethod
    def _run(
        self, target: LabelOnlyTarget, classes: torch.Tensor, budget: AttackBudget,
        prior: Prior | None, public_images: torch.Tensor | None, block: RowBlock,
    ) -> AttackResult:  # fmt: skip
        """Attack ``classes`` (all of them) and return the kept reconstructions of ``block``'s rows.

        ``block`` is this process's share of the class-major batch (the whole batch in one process);
        draw randomness through it so that every share is what one process computes
        (pipeline.attacks.sharding).
        """

    def run(
        self,
        target: LabelOnlyTarget,
        classes: Sequence[int],
        budget: AttackBudget,
        seed: int,
        generator: Prior | None = None,
        public_images: torch.Tensor | np.ndarray | None = None,
        shard: ClassShard | None = None,
    ) -> AttackResult:
        """Reconstruct ``budget.samples_per_class`` images for each class, all classes in one batch.

        Args:
            target: a ``WhiteBoxTarget`` or ``LabelOnlyTarget``; must provide ``self.requires``.
            classes: class ids in ``range(target.num_classes)``.
            budget: steps, candidates per class, samples kept per class.
            seed: seeds every random draw; the caller's global RNG state is left untouched.
            generator: the GAN prior of the attack's ``prior_kind`` (an ``ImagePrior`` for "generic",
                a ``ConditionalPrior`` / ``KEDMIPrior`` trained against this target for "plgmi" /
                "kedmi"); required when ``uses_prior``, ignored otherwise.
            public_images: public images (N, C, H, W), uint8 or float in [0, 1]; required when
                ``uses_public_images``, ignored otherwise.
            shard: the processes that share this run's classes (``ClassShard.across_ranks()`` under
                torchrun; see pipeline.attacks.sharding); every one gets the whole result. Default: alone.
        """
        provides = getattr(target, "provides", None)
        if provides is None:
            raise TypeError(f"target must be a WhiteBoxTarget or LabelOnlyTarget wrapper, got {type(target).__name__}")
        if self.requires not in provides:
            raise TypeError(
                f"{type(self).__name__} requires {self.requires.value} access to the target, but "
                f"{type(target).__name__} provides only {sorted(a.value for a in provides)}"
            )
        if not isinstance(budget, AttackBudget):
            raise TypeError(f"budget must be an AttackBudget, got {type(budget).__name__}")
        class_ids = check_classes(classes, target.num_classes)
        prior = self._check_prior(generator, target) if self.uses_prior else None
        public = _as_float_images(public_images, target.image_shape) if self.uses_public_images else None
        runtime = current_runtime()
        if runtime.on_cuda:  # the target's frozen copy, the prior and the public images go to the GPU
            target.to(runtime.device)
            for net in (getattr(prior, "generator", None), getattr(prior, "discriminator", None)):
                if net is not None:
                    net.to(runtime.device)
            public = public.to(runtime.device) if public is not None else None
            class_ids = class_ids.to(runtime.device)
        shard = shard or ClassShard()
        block = shard.block(len(class_ids), budget.restarts)
        start = time.perf_counter()
        with seeded_rng(seed), on_device(runtime):  # new tensors (latents, noise) on the runtime's device
            result = self._run(target, class_ids, budget, prior, public, block)
        result.seconds = time.perf_counter() - start
        return _whole(result.on_cpu(), shard)

    def _check_prior(self, generator: Prior | None, target: LabelOnlyTarget) -> Prior:
        expected = PRIOR_TYPES[self.prior_kind]  # type: ignore[index]
        if not isinstance(generator, expected):
            hint = "pipeline.prior" if self.prior_kind == "generic" else "pipeline.target_gan"
            raise TypeError(
                f"{type(self).__name__} needs a {self.prior_kind!r} prior: generator must be a {expected.__name__} "
                f"(see {hint}), got {type(generator).__name__}"
            )
        cfg = generator.config
        shape = (cfg.channels, cfg.image_size, cfg.image_size)
        if shape != target.image_shape:
            raise ValueError(f"generator makes images of shape {shape}, the target expects {target.image_shape}")
        num_classes = getattr(generator, "num_classes", None)
        if num_classes is not None and num_classes != target.num_classes:
            raise ValueError(
                f"generator was trained against a {num_classes}-class target, this target has {target.num_classes} "
                "classes: train the target-specific GAN against this target"
            )
        return generator


def _whole(result: AttackResult, shard: ClassShard) -> AttackResult:
    """The whole batch's result from every rank's kept rows (class-major, so rank order is class order).

    History and info are the same on every rank (the attacks reduce them); ``seconds`` is the slowest rank's.
    """
    if shard.alone:
        return result
    parts = shard.gather((result.images, result.labels, result.scores, result.seconds))
    images, labels, scores, seconds = zip(*parts, strict=True)
    return replace(result, images=torch.cat(images), labels=torch.cat(labels), scores=torch.cat(scores),
                   seconds=max(seconds))  # fmt: skip


def _as_float_images(images: torch.Tensor | np.ndarray | None, shape: tuple[int, int, int]) -> torch.Tensor:
    if images is None:
        raise ValueError("public_images is required by this attack, got None")
    tensor = torch.as_tensor(images)
    if tensor.ndim != 4 or tuple(tensor.shape[1:]) != shape:
        raise ValueError(f"public_images must have shape (N, {', '.join(map(str, shape))}), got {tuple(tensor.shape)}")
    if tensor.dtype == torch.uint8:
        return tensor.float() / 255.0
    if not tensor.is_floating_point() or tensor.min() < 0 or tensor.max() > 1:
        raise ValueError("public_images must be uint8 or float in [0, 1]")
    return tensor.float()


def select_top(
    images: torch.Tensor, labels: torch.Tensor, scores: torch.Tensor, restarts: int, keep: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Keep the ``keep`` best-scoring of each class's ``restarts`` candidates (class-major layout)."""
    order = torch.argsort(scores.view(-1, restarts), dim=1, descending=True, stable=True)[:, :keep]
    index = (order + torch.arange(order.shape[0]).unsqueeze(1) * restarts).reshape(-1)
    return images[index], labels[index], scores[index]


def check_param(problems: list[str], ok: bool, name: str, value: object, rule: str) -> None:
    """Record ``"<name> must <rule>, got <value>"`` when ``ok`` is false (validators collect, then raise once)."""
    if not ok:
        problems.append(f"{name} must {rule}, got {value!r}")


def as_white_box(target: LabelOnlyTarget) -> WhiteBoxTarget:
    """Narrow the type inside a white-box attack (``run`` has already checked the access)."""
    if not isinstance(target, WhiteBoxTarget):
        raise TypeError(f"a WhiteBoxTarget is required, got {type(target).__name__}")
    return target
