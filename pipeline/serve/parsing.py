"""Request parsing off the event loop: large bodies are parsed in worker processes.

``json.loads`` and ``np.asarray`` on an 8 MiB body run in C for tens to hundreds of milliseconds
without releasing the GIL, so a thread would still stall the event loop (and with it
``/v2/health/live``). Bodies whose JSON part is larger than ``inline_bytes`` therefore go to a small
process pool; small ones (every ordinary request) are parsed inline, where a pool round trip would
cost more than the parse. The pool uses ``forkserver`` with only this module preloaded: workers
never import torch or fork a process that holds inference threads.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from pipeline.serve.protocol import (
    InferRequest,
    ProtocolError,
    TensorSpec,
    WireSpec,
    parse_infer_request,
)

log = logging.getLogger(__name__)


def _parse(body: bytes, header_length: str | None, spec: WireSpec, output: WireSpec, max_batch: int) -> InferRequest:
    return parse_infer_request(body, header_length, spec, output, max_batch)


def _json_size(body: bytes, header_length: str | None) -> int:
    if header_length is not None and header_length.isdigit():
        return min(int(header_length), len(body))
    return len(body)


class RequestParser:
    """``await parse(body, header_length)`` → ``InferRequest`` or ``ProtocolError``; big bodies off the loop."""

    def __init__(self, spec: TensorSpec, output: TensorSpec, max_batch: int, *, workers: int, inline_bytes: int):
        if workers < 0:
            raise ValueError(f"parse workers must be >= 0, got {workers}")
        self.spec, self.output = WireSpec.of(spec), WireSpec.of(output)
        self.max_batch, self.workers, self.inline_bytes = max_batch, workers, inline_bytes
        self._pool: ProcessPoolExecutor | None = None

    def start(self) -> None:
        """Create the pool (workers start on first use or ``warm_up``)."""
        if self.workers and self._pool is None:
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload([__name__])
            self._pool = ProcessPoolExecutor(self.workers, mp_context=ctx)

    async def warm_up(self) -> None:
        """Start every worker now, so the first large request does not pay for process start-up."""
        if self._pool is not None:
            loop = asyncio.get_running_loop()
            await asyncio.gather(
                *(loop.run_in_executor(self._pool, _json_size, b"", None) for _ in range(self.workers))
            )

    async def parse(self, body: bytes, header_length: str | None) -> InferRequest:
        if self._pool is None or _json_size(body, header_length) <= self.inline_bytes:
            return parse_infer_request(body, header_length, self.spec, self.output, self.max_batch)
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, _parse, body, header_length, self.spec, self.output,
                                              self.max_batch)  # fmt: skip
        except BrokenProcessPool:  # a worker died (killed, out of memory): replace the pool, refuse this one
            log.error("a parse worker died; restarting the parse pool")
            self.close()
            self.start()
            raise ProtocolError("the request parser restarted; retry the request", status=503) from None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
