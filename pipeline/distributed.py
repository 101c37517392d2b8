"""Several processes, one result: the torch.distributed plumbing for stages run under ``torchrun``.

``torchrun --nproc_per_node N -m stages.<stage> ...`` starts N copies of a stage. Each joins the
process group at stage start (``pipeline.runtime.start_stage``: NCCL on GPUs, gloo on CPUs), works on
its share, and only rank 0 writes files and logs to MLflow. Everything here is a no-op in a single
process (world size 1), so the single-process path is the one it always was.

The shares are chosen so that N processes compute what one would, up to float summation order:
training takes each global batch as one process would (same order, same augmentation draws) and
gives each rank a contiguous slice, with batch-norm statistics reduced over the whole batch
(:class:`CrossRankBatchNorm` on CPUs, torch's SyncBatchNorm on GPUs); attacks shard whole units of
work whose randomness depends only on their own seed.

The loss weighting, in one rule: each rank minimises its part of ``world ×`` the whole batch's loss,
so that the average of the ranks' gradients (DDP's, or :func:`average_gradients`) is the gradient
of the whole batch's loss. A mean over rows enters as the rank's mean times its share of the rows
times the world size (:func:`weighted_for_averaging`); a term that couples rows is computed from
statistics reduced over all ranks (:func:`batch_mean`) or from the whole batch's rows gathered on
every rank (:func:`gather_rows`), the same value on every rank, and enters once per rank, unweighted
(its all-reduce's backward sums every rank's gradient into each rank's rows).
"""

from __future__ import annotations

import atexit
import contextlib
import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

T = TypeVar("T")


def local_rank() -> int:
    """This process's index on its machine (``LOCAL_RANK`` from torchrun; 0 in a single process)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def is_primary() -> bool:
    """Rank 0: the one process that writes checkpoints, reports and MLflow runs."""
    return rank() == 0


def init_from_env(device: torch.device) -> bool:
    """Join the process group torchrun describes (``WORLD_SIZE`` > 1); False when there is none."""
    if dist.is_initialized() or int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return dist.is_initialized()
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    atexit.register(dist.destroy_process_group)  # a stage's process leaves the group when it ends
    return True


def span(n: int, world: int, me: int) -> slice:
    """Rank ``me``'s contiguous part of ``n`` rows among ``world`` ranks (the first ``n % world`` take one more)."""
    base, extra = divmod(n, world)
    start = me * base + min(me, extra)
    return slice(start, start + base + (1 if me < extra else 0))


def shard(n: int) -> slice:
    """This rank's contiguous rows of ``n``."""
    return span(n, world_size(), rank())


def shard_items(items: Sequence[T]) -> list[T]:
    """This rank's items of a work list, round robin (rank r takes items r, r + world, …)."""
    return list(items[rank() :: world_size()])


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """The sum over ranks (a new tensor; ``tensor`` itself in a single process)."""
    if world_size() == 1:
        return tensor
    total = tensor.clone()
    dist.all_reduce(total)
    return total


def gather_to_primary(obj: Any) -> list[Any] | None:
    """Every rank's ``obj`` in rank order on rank 0, None on the others; ``[obj]`` in a single process."""
    if world_size() == 1:
        return [obj]
    gathered: list[Any] | None = [None] * world_size() if is_primary() else None
    dist.gather_object(obj, gathered, dst=0)
    return gathered


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


def augment_rows(augment: nn.Sequential, x: torch.Tensor, rows: slice, total: int) -> torch.Tensor:
    """Rows ``rows`` of a batch of ``total`` images (``x``), augmented as they would be in the whole batch.

    Each kornia augmentation draws its random parameters for all ``total`` rows, the draws one
    process augmenting the whole batch makes (so every rank's random stream stays the same), and
    applies this slice's rows of them; with no rows here it only draws.
    """
    for aug in augment:
        params = aug.forward_parameters((total, *x.shape[1:]))
        if len(x):
            mine = {name: value[rows] for name, value in params.items() if name != "forward_input_shape"}
            mine["forward_input_shape"] = params["forward_input_shape"].new_tensor(x.shape)
            x = aug(x, params=mine)
    return x


def require_row_per_rank(batch_size: int, what: str) -> None:
    """Refuse a batch with fewer rows than ranks: a rank without rows would average a NaN mean in."""
    if batch_size < world_size():
        raise ValueError(f"{what}: batch_size {batch_size} gives some of the {world_size()} ranks no rows; "
                         "use a larger batch or fewer processes")  # fmt: skip


def weighted_for_averaging(local_mean: torch.Tensor, rows: int, total: int) -> torch.Tensor:
    """What a rank minimises for a mean over ``total`` rows of which it holds ``rows``.

    Gradients are averaged over ranks: weighting the rank's mean by its share of the rows times the
    world size makes that average the gradient of the whole batch's mean, also where the shares are
    unequal. ``local_mean`` itself in a single process (the single-process path is unchanged).
    """
    world = world_size()
    return local_mean if world == 1 else local_mean * (rows / total * world)


def global_mean(local_mean: torch.Tensor, rows: int, total: int) -> torch.Tensor:
    """The whole batch's mean (detached, the same on every rank) from each rank's mean over its rows.

    What histories and progress bars show: the value one process would have computed.
    ``local_mean`` itself in a single process.
    """
    if world_size() == 1:
        return local_mean
    return all_reduce_sum(local_mean.detach() * (rows / total))


def batch_mean(x: torch.Tensor, total: int) -> torch.Tensor:
    """The mean over dim 0 of the whole batch of ``total`` rows of which ``x`` is this rank's slice.

    Differentiable and the same on every rank: for losses that couple the rows of a batch (a
    feature-matching distance between batch means), which a rank's own rows cannot give. Such a
    term enters each rank's objective once, unweighted (see the module docstring). ``x.mean(0)``
    in a single process.
    """
    if world_size() == 1:
        return x.mean(0)
    return _SumOverRanks.apply(x.sum(0)) / total


def sum_over_ranks(x: torch.Tensor) -> torch.Tensor:
    """The sum over ranks, differentiable: its backward sums every rank's gradient into each rank's ``x``.

    For a term computed from it that enters every rank's objective: as a batch-coupled term of a
    training loss (once per rank, with gradients averaged after), or with a 1/world factor where
    each rank owns what it optimises (class-sharded attacks). ``x`` itself in a single process.
    """
    return x if world_size() == 1 else _SumOverRanks.apply(x)


def row_counts(x: torch.Tensor) -> list[int]:
    """Every rank's number of rows of its slice ``x`` of a batch, in rank order (one all-reduce).

    ``[len(x)]`` in a single process.
    """
    world = world_size()
    if world == 1:
        return [len(x)]
    counts = torch.zeros(world, dtype=torch.int64, device=x.device)
    counts[rank()] = len(x)
    dist.all_reduce(counts)
    return counts.tolist()


def gather_rows(x: torch.Tensor, counts: Sequence[int]) -> torch.Tensor:
    """The whole batch, the same on every rank, from each rank's contiguous slice (``counts[r]`` rows on rank r).

    For terms that need every pair of rows (BiDO's kernel matrices), which batch statistics cannot
    give. Differentiable: each rank places its rows in a zero batch and one :class:`_SumOverRanks`
    fills in the others, so the backward sums every rank's gradient of the whole batch and keeps
    this rank's rows of it. ``x`` itself in a single process.
    """
    if world_size() == 1:
        return x
    me = rank()
    before, after = sum(counts[:me]), sum(counts[me + 1 :])
    zeros = [x.new_zeros((n, *x.shape[1:])) for n in (before, after)]
    return _SumOverRanks.apply(torch.cat([zeros[0], x, zeros[1]]))


def average_gradients(params: Iterable[torch.Tensor]) -> None:
    """Replace every gradient by its mean over ranks, in one all-reduce: DDP's reduction, after backward.

    For loops that DDP's wrapper does not fit (the GANs: two networks and optimisers, a network
    called through methods other than ``forward``, the generator's backward running through the
    discriminator). A parameter with no gradient on any rank keeps none (an optimiser skips it, as
    in one process); one with a gradient on some ranks only counts zero on the others.
    """
    world = world_size()
    if world == 1:
        return
    params = [p for p in params if p.requires_grad]
    if not params:
        return
    grads = [p.grad.reshape(-1) if p.grad is not None else p.new_zeros(p.numel()) for p in params]
    present = params[0].new_tensor([float(p.grad is not None) for p in params])
    flat = torch.cat([*grads, present])
    dist.all_reduce(flat)
    sums = flat[: -len(params)].split([p.numel() for p in params])
    for param, total, count in zip(params, sums, flat[-len(params) :].tolist(), strict=True):
        param.grad = (total / world).view_as(param).to(param.dtype) if count else None


def descend(optimizer: torch.optim.Optimizer, objective: torch.Tensor) -> None:
    """One step of ``optimizer`` on ``objective``, its parameters' gradients averaged over ranks first."""
    optimizer.zero_grad(set_to_none=True)
    objective.backward()
    average_gradients(p for group in optimizer.param_groups for p in group["params"])
    optimizer.step()


class _SumOverRanks(torch.autograd.Function):
    """All-reduce (sum) whose backward is the all-reduce of the gradients: d(Σ_r x_r)/dx_r = 1 on every rank."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        total = x.clone()
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        total = grad.clone()
        dist.all_reduce(total)
        return total


class CrossRankBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch norm whose training statistics are those of the whole batch across ranks (gloo, CPU).

    torch's SyncBatchNorm runs only on GPUs. Per channel, each rank contributes its sum, sum of
    squares and count to one differentiable all-reduce, so forward and backward are those of a
    single process that saw the whole batch.
    """

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2D input, got {x.dim()}D")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or world_size() == 1:
            return super().forward(x)
        channels = x.shape[1]
        dims = [0, *range(2, x.dim())]
        count = x.new_tensor([x.numel() / channels])
        stats = torch.cat([x.sum(dims), (x * x).sum(dims), count])
        stats = _SumOverRanks.apply(stats)  # differentiable: gradients flow back to every rank's rows
        n = stats[-1]
        mean = stats[:channels] / n
        var = (stats[channels : 2 * channels] / n - mean * mean).clamp_min(0)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                self.running_mean.lerp_(mean.detach(), factor)
                self.running_var.lerp_(var.detach() * n / (n - 1), factor)
        shape = [1, channels, *([1] * (x.dim() - 2))]
        y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y


def _swap_batchnorm(model: nn.Module, make: Any) -> dict[str, type[nn.Module]]:
    """Replace every batch norm below ``model`` by ``make(old)``; its old class by dotted name."""
    replaced: dict[str, type[nn.Module]] = {}
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.modules.batchnorm._BatchNorm):
                replaced[f"{name}.{child_name}".lstrip(".")] = type(child)
                setattr(module, child_name, make(child))
    return replaced


def _sharing(cls: type[nn.modules.batchnorm._BatchNorm], old: nn.modules.batchnorm._BatchNorm) -> nn.Module:
    """A ``cls`` batch norm over the same parameter and buffer tensors as ``old`` (training updates both)."""
    new = cls.__new__(cls)
    nn.Module.__init__(new)
    new.num_features, new.eps, new.momentum = old.num_features, old.eps, old.momentum
    new.affine, new.track_running_stats = old.affine, old.track_running_stats
    # The raw tables, not named_parameters(): those skip the None entries (weight and bias of an
    # affine=False norm), and batch norm's forward reads them as attributes.
    for name, param in old._parameters.items():
        new.register_parameter(name, param)
    for name, buffer in old._buffers.items():
        new.register_buffer(name, buffer, persistent=name not in old._non_persistent_buffers_set)
    if cls is nn.SyncBatchNorm:
        new.process_group = None
    new.train(old.training)
    return new


@contextlib.contextmanager
def batchnorm_across_ranks(model: nn.Module, device: torch.device) -> Iterator[nn.Module]:
    """Within the block, ``model``'s batch norms reduce their statistics over all ranks.

    The new modules share the old ones' parameters and running statistics, and the old classes
    are put back afterwards, so the trained model (and its checkpoint) is the plain model.
    """
    if world_size() == 1:
        yield model
        return
    cls = nn.SyncBatchNorm if device.type == "cuda" else CrossRankBatchNorm
    originals = _swap_batchnorm(model, lambda old: _sharing(cls, old))
    try:
        yield model
    finally:
        modules = dict(model.named_modules())
        for dotted, original in originals.items():
            parent_name, _, child_name = dotted.rpartition(".")
            parent = modules[parent_name] if parent_name else model
            setattr(parent, child_name, _sharing(original, getattr(parent, child_name)))
