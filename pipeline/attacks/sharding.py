"""One attack run over several processes: each rank optimises a contiguous block of the attacked classes.

Under ``torchrun`` with ``attack.shard: classes`` (pipeline.suite) every rank runs the same attack with
the same seed, and each keeps only its classes' rows of the class-major batch (classes × candidates).
The ranks compute what one process would, up to float summation order, because:

- every random draw is made for the whole batch on every rank, which then keeps its rows
  (:meth:`RowBlock.randn`, :meth:`RowBlock.augment`), so all ranks' random streams stay the one
  stream a single process draws from;
- a mean over rows enters a rank's objective as its rows' mean times their share of the batch
  (:meth:`RowBlock.part`): the latents are the rank's own, so the gradient of its part is the
  single process's gradient for those rows, with no gradient averaging;
- a term that couples rows (DeepInversion's batch statistics) is computed from sums reduced over
  the ranks (``pipeline.distributed.sum_over_ranks``), the same value on every rank, and enters each
  rank's objective divided by the world size (:meth:`RowBlock.coupled`): the reduction's backward
  sums the ranks' gradients, so each rank's rows get the gradient of the term once;
- decisions that change how much is drawn (BREP's "every row found yet?") are taken on the
  reduced value.

With one process (``ClassShard()``, the default) every helper is the identity, so a single
process runs exactly the code it ran before sharding existed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from pipeline.distributed import all_reduce_sum, augment_rows, gather_rows, rank, span, world_size


@dataclass(frozen=True)
class ClassShard:
    """Which share of the work this process does and how it talks to the others (``world`` 1: alone)."""

    world: int = 1
    rank: int = 0

    @classmethod
    def across_ranks(cls) -> ClassShard:
        """Every process of the torchrun group takes part (one process alone outside torchrun)."""
        return cls(world_size(), rank())

    @property
    def alone(self) -> bool:
        return self.world == 1

    def span(self, n: int) -> slice:
        """This rank's contiguous part of ``n`` items."""
        return span(n, self.world, self.rank)

    def block(self, num_classes: int, per_class: int) -> RowBlock:
        """This rank's rows of a class-major batch of ``num_classes`` × ``per_class`` rows."""
        if num_classes < self.world:
            raise ValueError(
                f"{num_classes} attacked classes give some of the {self.world} ranks none: shard whole runs "
                "(attack.shard: runs) or start fewer processes"
            )
        return RowBlock(self, self.span(num_classes), per_class, num_classes)

    def sum(self, value: torch.Tensor) -> torch.Tensor:
        """The sum over ranks, detached (``value`` itself when alone)."""
        return value if self.alone else all_reduce_sum(value.detach())

    def everywhere(self, fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """``fn`` of every row of ``x`` on every rank, each rank computing its part (e.g. labelling probes).

        ``fn`` maps rows to one value each (``(n, ...) → (n,)``); the parts are assembled by
        ``pipeline.distributed.gather_rows``.
        """
        if self.alone:
            return fn(x)
        counts = [len(range(len(x))[span(len(x), self.world, r)]) for r in range(self.world)]
        return gather_rows(fn(x[self.span(len(x))]), counts)

    def all_true(self, flags: torch.Tensor) -> bool:
        """Whether ``flags`` is all true on every rank."""
        if self.alone:
            return bool(flags.all())
        return int(self.sum(flags.logical_not().sum())) == 0

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj`` in rank order, on every rank (``[obj]`` when alone)."""
        if self.alone:
            return [obj]
        parts: list[Any] = [None] * self.world
        dist.all_gather_object(parts, obj)
        return parts


@dataclass(frozen=True)
class RowBlock:
    """This rank's rows of a class-major batch: its classes × ``per_class`` rows, contiguous."""

    shard: ClassShard
    classes: slice  # indices into the attacked class list
    per_class: int
    num_classes: int

    @property
    def rows(self) -> slice:
        return slice(self.classes.start * self.per_class, self.classes.stop * self.per_class)

    @property
    def total(self) -> int:
        """Rows of the whole batch (all ranks)."""
        return self.num_classes * self.per_class

    @property
    def count(self) -> int:
        """Rows of this rank."""
        return self.rows.stop - self.rows.start

    def take(self, whole: torch.Tensor) -> torch.Tensor:
        """This rank's rows of a whole-batch tensor (``whole`` itself when alone)."""
        return whole if self.shard.alone else whole[self.rows]

    def randn(self, *shape: int) -> torch.Tensor:
        """Standard normal rows of ``shape`` drawn for the whole batch, as one process draws them; this rank's rows."""
        whole = torch.randn(self.total, *shape)
        return whole if self.shard.alone else whole[self.rows].clone()

    def augment(self, augment: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
        """This rank's rows ``x``, augmented as they would be within the whole batch."""
        if self.shard.alone:
            return augment(x)
        return augment_rows(augment, x, self.rows, self.total)

    def part(self, local_mean: torch.Tensor) -> torch.Tensor:
        """What a mean over the whole batch's rows contributes to this rank's objective (see the module doc)."""
        return local_mean if self.shard.alone else local_mean * (self.count / self.total)

    def coupled(self, term: torch.Tensor) -> torch.Tensor:
        """What a term computed from the whole batch (the same on every rank) contributes to this rank's objective."""
        return term if self.shard.alone else term / self.shard.world

    def loss_value(self, objective: torch.Tensor) -> float:
        """The whole batch's loss for the history: the sum of the ranks' objectives."""
        return objective.item() if self.shard.alone else self.shard.sum(objective.detach()).item()

    def mean(self, values: torch.Tensor) -> float:
        """The mean of a per-row quantity over the whole batch (all elements of every rank's ``values``)."""
        if self.shard.alone:
            return float(values.mean())
        sums = self.shard.sum(torch.stack([values.sum(), values.new_tensor(float(values.numel()))]))
        return float(sums[0] / sums[1])

    def gather_rows(self, values: list[Any]) -> list[Any]:
        """A per-row (or per-class) Python list of this rank, concatenated over ranks in order."""
        return [item for part in self.shard.gather(values) for item in part]
