"""Micro-batcher: requests share backend calls up to max_batch / max_wait; results go back to their owner."""

import asyncio

import numpy as np
import pytest

from pipeline.serve.batcher import MicroBatcher


def _run(coro):
    return asyncio.run(coro)


def test_concurrent_requests_are_batched_and_routed_back():
    calls = []

    def infer(x):
        calls.append(len(x))
        return x.reshape(len(x), -1).sum(1, keepdims=True)

    async def main():
        batcher = MicroBatcher(infer, max_batch=8, max_wait_s=0.05)
        await batcher.start()
        xs = [np.full((n, 2), float(i), np.float32) for i, n in enumerate([1, 3, 2, 2, 4, 1])]
        ys = await asyncio.gather(*(batcher.submit(x) for x in xs))
        await batcher.stop()
        return xs, ys

    xs, ys = _run(main())
    for x, y in zip(xs, ys, strict=True):
        np.testing.assert_array_equal(y, x.sum(1, keepdims=True))
    assert sum(calls) == 13 and max(calls) <= 8 and len(calls) < 6  # batched, never over max_batch


def test_backend_error_reaches_every_waiting_request_and_the_worker_survives():
    state = {"fail": True}

    def infer(x):
        if state["fail"]:
            raise RuntimeError("device lost")
        return x

    async def main():
        batcher = MicroBatcher(infer, max_batch=4, max_wait_s=0.01)
        await batcher.start()
        results = await asyncio.gather(*(batcher.submit(np.zeros((1, 1))) for _ in range(3)), return_exceptions=True)
        state["fail"] = False
        after = await batcher.submit(np.ones((1, 1)))
        await batcher.stop()
        return results, after

    results, after = _run(main())
    assert all(isinstance(r, RuntimeError) and "device lost" in str(r) for r in results)
    np.testing.assert_array_equal(after, np.ones((1, 1)))


def test_oversize_request_and_bad_settings_are_refused():
    async def main():
        batcher = MicroBatcher(lambda x: x, max_batch=2, max_wait_s=0)
        await batcher.start()
        try:
            with pytest.raises(ValueError, match="outside 1..2"):
                await batcher.submit(np.zeros((3, 1)))
        finally:
            await batcher.stop()

    _run(main())
    with pytest.raises(ValueError, match="max_batch"):
        MicroBatcher(lambda x: x, max_batch=0, max_wait_s=0)
