"""Dynamic micro-batching: requests wait at most ``max_wait_s`` to share one backend call.

One worker task drains an asyncio queue into a batch until it holds ``max_batch`` rows or the
first request has waited ``max_wait_s``; the backend call runs in a single worker thread, so the
event loop keeps accepting requests (which queue up and form the next batch) while it computes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np


@dataclass
class _Pending:
    x: np.ndarray
    future: asyncio.Future


class MicroBatcher:
    """``await submit(x)`` → the backend's output rows for ``x`` (any batch size ≤ max_batch)."""

    def __init__(
        self,
        infer: Callable[[np.ndarray], np.ndarray],
        *,
        max_batch: int,
        max_wait_s: float,
        on_batch: Callable[[int, float], None] | None = None,
    ):
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        if max_wait_s < 0:
            raise ValueError(f"max_wait_s must be >= 0, got {max_wait_s}")
        self.infer, self.max_batch, self.max_wait_s, self.on_batch = infer, max_batch, max_wait_s, on_batch
        self._queue: asyncio.Queue[_Pending] | None = None
        self._carry: _Pending | None = None
        self._task: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="infer")

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._run(), name="micro-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._executor.shutdown(wait=True)

    async def run_direct(self, x: np.ndarray) -> np.ndarray:
        """Call the backend on the inference thread, bypassing the queue (warm-up)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, self.infer, x)

    async def submit(self, x: np.ndarray) -> np.ndarray:
        if self._queue is None:
            raise RuntimeError("MicroBatcher.start() was not awaited")
        if not 1 <= len(x) <= self.max_batch:
            raise ValueError(f"batch of {len(x)} rows outside 1..{self.max_batch}")
        future = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(x, future))
        return await future

    async def _collect(self) -> list[_Pending]:
        queue = self._queue
        if queue is None:
            raise RuntimeError("MicroBatcher.start() was not awaited")
        first = self._carry or await queue.get()
        self._carry = None
        batch, rows = [first], len(first.x)
        deadline = time.monotonic() + self.max_wait_s
        while rows < self.max_batch:
            remaining = deadline - time.monotonic()
            if remaining <= 0:  # past the deadline: take only what is already queued
                if queue.empty():
                    break
                item = queue.get_nowait()
            else:
                try:
                    item = await asyncio.wait_for(queue.get(), remaining)
                except asyncio.TimeoutError:  # builtin TimeoutError only from 3.11
                    break
            if rows + len(item.x) > self.max_batch:
                self._carry = item  # starts the next batch; never split a request
                break
            batch.append(item)
            rows += len(item.x)
        return batch

    async def _run(self) -> None:
        while True:
            batch = [p for p in await self._collect() if not p.future.cancelled()]
            if not batch:
                continue
            x = np.concatenate([p.x for p in batch]) if len(batch) > 1 else batch[0].x
            start = time.perf_counter()
            try:
                y = await self.run_direct(x)
            except Exception as err:  # noqa: BLE001 - delivered to every waiting request
                for p in batch:
                    if not p.future.done():
                        p.future.set_exception(err)
                continue
            if self.on_batch is not None:
                self.on_batch(len(x), time.perf_counter() - start)
            offset = 0
            for p in batch:
                n = len(p.x)
                if not p.future.done():
                    p.future.set_result(y[offset : offset + n])
                offset += n
