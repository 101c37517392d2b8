"""BiDO-HSIC: CE − λ_y·Σ_l HSIC(h_l, y) + λ_x·Σ_l HSIC(h_l, x) over the feature extractor's stages.

Paper: Peng, Liu, Wang, Zhang, Han, Qin, Cheng, Xu, "Bilateral Dependency Optimization: Defending
Against Model-inversion Attacks", KDD 2022. Lowering the dependence of each hidden representation
h_l on the input x limits what an inverter can recover, while raising its dependence on the label
y keeps it useful. Dependence is the normalised HSIC estimator the authors' code uses,
tr(R_a R_b) with R = K̃(K̃ + ε·m·I)⁻¹ (re-implemented with symmetric centring K̃ = HKH), on σ = 5
Gaussian kernels whose bandwidth scales with √dim; the label kernel is linear on one-hot y, the
code's default (``label_kernel: gaussian`` is available). Its value for independent variables is
well above 0 at small m, so compare HSIC values across settings, not with 0.
λ_y ≤ 0 collapses the model; the O(m³) solve per layer per batch is why batches stay ≤ 64.

Under torchrun every rank gathers the whole batch's x, y and h_l (h_l differentiably) and computes
the same HSIC terms; they enter each rank's objective once and the CE as a row mean (``SplitLoss``).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator
from torch import nn

from pipeline.config import TrainConfig
from pipeline.defenses.common import StepMeans, no_label_smoothing, phase_callback
from pipeline.defenses.registry import DefenseConfig, DefenseData, DefenseResult, PhaseCallback, register_defense
from pipeline.distributed import gather_rows, global_mean, row_counts
from pipeline.models import Classifier
from pipeline.train import LossFn, SplitLoss, fit, to_float

MAX_BATCH = 64
RIDGE = 1e-5  # ε in R = K̃ (K̃ + ε·m·I)⁻¹, as in the normalised-HSIC code BiDO uses


class BidoConfig(DefenseConfig):
    lambda_x: float = Field(0.05, ge=0)
    lambda_y: float = 0.5
    sigma: float = Field(5.0, gt=0)
    label_kernel: Literal["linear", "gaussian"] = "linear"
    layers: list[str] | None = None  # names of modules inside model.features; None → one per stage
    train: TrainConfig

    @field_validator("lambda_y")
    @classmethod
    def _label_term_needed(cls, value: float) -> float:
        if value <= 0:
            raise ValueError(
                f"lambda_y must be > 0 (got {value}): without the label-dependence term (λ_y ≤ 0) "
                "minimising HSIC(h, x) collapses the model (BiDO paper)"
            )
        return value

    @field_validator("train")
    @classmethod
    def _small_batches(cls, train: TrainConfig) -> TrainConfig:
        if train.batch_size > MAX_BATCH:
            raise ValueError(
                f"batch_size must be <= {MAX_BATCH} (got {train.batch_size}): BiDO's HSIC solves an "
                "m×m system per layer per batch (O(m³)); keep batches small"
            )
        return no_label_smoothing(train)


def gaussian_kernel(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """exp(−‖a − b‖² / (2σ²·D)) for flattened rows (D = feature dim, so σ is scale-free)."""
    x = x.flatten(1)
    sq = x.pow(2).sum(1)
    distances = (sq[:, None] + sq[None, :] - 2 * x @ x.T).clamp_min(0)  # no sqrt: finite gradient at 0
    return torch.exp(-distances / (2 * sigma**2 * x.shape[1]))


def normalized_hsic(k_a: torch.Tensor, k_b: torch.Tensor, ridge: float = RIDGE) -> torch.Tensor:
    """tr(R_a R_b), R = K̃ (K̃ + ε·m·I)⁻¹ with K̃ = H K H centred: grows with dependence, ≤ m − 1.

    Computed in float64: the ridge ε·m is small next to kernel entries near 1.
    """
    m = k_a.shape[0]
    eye = torch.eye(m, dtype=torch.float64, device=k_a.device)
    centre = eye - 1.0 / m

    def resolvent(k: torch.Tensor) -> torch.Tensor:
        kc = centre @ k.double() @ centre
        return torch.linalg.solve(kc + ridge * m * eye, kc)  # = K̃(K̃ + εmI)⁻¹: the two commute

    return (resolvent(k_a) * resolvent(k_b).T).sum()


def stage_layers(features: nn.Module, example: torch.Tensor) -> list[str]:
    """Default hidden layers: the last top-level child of ``features`` at each spatial resolution.

    That is the output of each stage before it downsamples (for ResNets: relu, layer1..layer4);
    the feature vector itself is always added by ``HiddenProbe``.
    """
    calls: list[tuple[str, tuple[int, ...]]] = []
    handles = [
        child.register_forward_hook(lambda m, i, out, name=name: calls.append((name, tuple(out.shape))))
        for name, child in features.named_children()
    ]
    was_training = features.training
    features.eval()
    try:
        with torch.no_grad():
            features(example)
    finally:
        features.train(was_training)
        for handle in handles:
            handle.remove()
    spatial = [(name, shape[2:]) for name, shape in calls if len(shape) == 4]
    return [name for i, (name, size) in enumerate(spatial) if i + 1 == len(spatial) or spatial[i + 1][1] != size]


class HiddenProbe:
    """Records the training forward's input x and hidden outputs h_l (hooks; eval passes ignored)."""

    def __init__(self, model: Classifier, layers: list[str]) -> None:
        modules = dict(model.features.named_modules())
        unknown = [name for name in layers if name not in modules]
        if unknown:
            raise ValueError(f"harden.bido.layers: {unknown} are not modules of model.features; known: {list(modules)}")
        self.model = model
        self.inputs: torch.Tensor | None = None
        self.hidden: dict[str, torch.Tensor] = {}
        self._handles = [model.register_forward_pre_hook(self._record_input)]
        for name in [*layers, "features"]:
            module = model.features if name == "features" else modules[name]
            self._handles.append(module.register_forward_hook(self._recorder(name)))

    def _record_input(self, module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        if module.training:
            self.inputs, self.hidden = args[0], {}

    def _recorder(self, name: str):
        def record(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            if self.model.training:
                self.hidden[name] = output

        return record

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()


def hsic_terms(
    probe: HiddenProbe, y: torch.Tensor, counts: Sequence[int], num_classes: int, sigma: float, label_kernel: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """(Σ_l HSIC(h_l, x), Σ_l HSIC(h_l, y)) for the whole batch the probe just saw, the same on every rank.

    The kernels pair every row with every other, so each rank's slice (``counts``: every rank's
    rows) is gathered first; h_l differentiably, so the gradient reaches each rank's own rows.
    """
    if probe.inputs is None or not probe.hidden:
        raise RuntimeError("BiDO: no training forward pass was recorded before the loss")
    k_x = gaussian_kernel(gather_rows(probe.inputs, counts), sigma)
    onehot = F.one_hot(gather_rows(y, counts), num_classes).float()
    k_y = onehot @ onehot.T if label_kernel == "linear" else gaussian_kernel(onehot, sigma)
    hx = hy = torch.zeros((), dtype=torch.float64, device=y.device)
    for hidden in probe.hidden.values():
        k_h = gaussian_kernel(gather_rows(hidden, counts), sigma)
        hx, hy = hx + normalized_hsic(k_h, k_x), hy + normalized_hsic(k_h, k_y)
    return hx, hy


def bido_loss_fn(probe: HiddenProbe, config: BidoConfig, num_classes: int, meter: StepMeans) -> LossFn:
    def loss(logits: torch.Tensor, y: torch.Tensor) -> SplitLoss:
        ce = F.cross_entropy(logits, y)
        counts = row_counts(y)
        hx, hy = hsic_terms(probe, y, counts, num_classes, config.sigma, config.label_kernel)
        meter.add(train_ce=global_mean(ce, len(y), sum(counts)).item(), train_hsic_x=hx.item(), train_hsic_y=hy.item())
        return SplitLoss(ce, (config.lambda_x * hx - config.lambda_y * hy).to(ce.dtype))  # HSIC: of the whole batch

    return loss


@register_defense("bido", BidoConfig)
def bido(
    baseline: Classifier, config: BidoConfig, data: DefenseData, on_epoch: PhaseCallback | None = None
) -> DefenseResult:
    """Fine-tune a copy of the baseline with the BiDO-HSIC objective; report the HSIC terms."""
    model = copy.deepcopy(baseline)
    layers = (
        config.layers if config.layers is not None else stage_layers(model.features, to_float(data.train.images[:2]))
    )
    probe, meter = HiddenProbe(model, layers), StepMeans()
    try:
        history = fit(
            model, data.train, config.train, loss_fn=bido_loss_fn(probe, config, model.num_classes, meter),
            eval_data=data.test, on_epoch=phase_callback(on_epoch, "bido", lambda _: meter.pop()),
            desc="bido: HSIC fine-tune",
        )  # fmt: skip
    finally:
        probe.close()
    last = history[-1]
    report = {
        "lambda_x": config.lambda_x, "lambda_y": config.lambda_y, "sigma": config.sigma,
        "label_kernel": config.label_kernel, "hsic_layers": [*layers, "features"],
        "final_hsic_x": last["train_hsic_x"], "final_hsic_y": last["train_hsic_y"],
    }  # fmt: skip
    return DefenseResult(model=model, history={"bido": history}, report=report)
