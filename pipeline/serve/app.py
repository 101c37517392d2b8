"""FastAPI app speaking the Open Inference Protocol (KServe v2) over one loaded backend.

The backend is chosen and loaded before the app is built (a bad model fails the process at once);
warm-up runs in the lifespan as a background task, and readiness turns true only after it, so
``/v2/health/live`` answers while ``/v2/health/ready`` still says 503.

The event loop only moves bytes: large bodies are parsed in worker processes
(``pipeline.serve.parsing``) and inference runs on the batcher's thread, so health answers while
big requests are in progress. At most ``max_inflight`` infer requests are admitted (more get 503
at once, before their body is read), and a body not received within ``body_timeout_s`` gets 408.
Every response is counted in /metrics by route and status. /docs and /openapi.json exist only with
``docs`` on; model metadata names no local file path.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from pipeline.serve.backends import Backend
from pipeline.serve.batcher import MicroBatcher
from pipeline.serve.config import ServeSection
from pipeline.serve.metrics import ServerMetrics, StatusCounter
from pipeline.serve.parsing import RequestParser
from pipeline.serve.protocol import HEADER_LENGTH, NonFiniteOutput, ProtocolError, encode_infer_response
from pipeline.serve.source import ModelSource

log = logging.getLogger(__name__)


@dataclass
class ServerState:
    backend: Backend
    source: ModelSource
    cfg: ServeSection
    attempts: list[dict[str, Any]]
    metrics: ServerMetrics
    batcher: MicroBatcher
    parser: RequestParser
    ready: bool = False
    inflight: int = 0
    warmup_error: str | None = None
    tasks: set[asyncio.Task] = field(default_factory=set)


async def _read_body(request: Request, limit: int) -> bytes:
    """Refuse by Content-Length before reading, and stop reading a chunked body at the limit."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ProtocolError(f"request body of {declared} bytes exceeds the limit of {limit} bytes", status=413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ProtocolError(f"request body exceeds the limit of {limit} bytes", status=413)
        chunks.append(chunk)
    return b"".join(chunks)


async def _read_body_in_time(request: Request, limit: int, timeout_s: float) -> bytes:
    try:
        return await asyncio.wait_for(_read_body(request, limit), timeout_s)
    except asyncio.TimeoutError:  # builtin TimeoutError only from 3.11
        raise ProtocolError(f"request body not received within {timeout_s:g} s", status=408) from None


async def _warm_up(state: ServerState) -> None:
    try:
        await state.parser.warm_up()
        for batch in sorted({1, state.cfg.max_batch}):
            x = np.zeros((batch, *state.source.input.dims), np.float32)
            for _ in range(state.cfg.warmup_iterations):
                await state.batcher.run_direct(x)
    except Exception as err:  # noqa: BLE001 - reported by /ready and the log; the server stays unready
        state.warmup_error = f"{type(err).__name__}: {err}"
        log.error("warm-up failed: %s", state.warmup_error)
        return
    state.ready = True
    state.metrics.ready.set(1)
    log.info("ready: backend %s (%s)", state.backend.name, state.backend.providers)


def create_app(backend: Backend, source: ModelSource, cfg: ServeSection, attempts: list[dict[str, Any]]) -> FastAPI:
    metrics = ServerMetrics(cfg.max_batch)
    metrics.backend.info({"backend": backend.name, "platform": backend.platform,
                          "providers": ",".join(backend.providers), "model": cfg.model_name})  # fmt: skip
    batcher = MicroBatcher(backend, max_batch=cfg.max_batch, max_wait_s=cfg.max_wait_ms / 1000,
                           on_batch=metrics.observe_batch)  # fmt: skip
    parser = RequestParser(source.input, source.output, cfg.max_batch, workers=cfg.parse_workers,
                           inline_bytes=cfg.inline_parse_bytes)  # fmt: skip
    state = ServerState(backend, source, cfg, attempts, metrics, batcher, parser)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        parser.start()
        await batcher.start()
        task = asyncio.create_task(_warm_up(state))
        state.tasks.add(task)
        task.add_done_callback(state.tasks.discard)
        try:
            yield
        finally:
            state.ready = False
            await batcher.stop()
            parser.close()
            source.close()  # the temporary folder of a registry download or an export, if any

    docs = {} if cfg.docs else {"docs_url": None, "redoc_url": None, "openapi_url": None}
    app = FastAPI(title="calor-serve", lifespan=lifespan, **docs)
    app.add_middleware(StatusCounter, metrics=metrics, model_name=cfg.model_name)
    app.state.server = state
    name = cfg.model_name

    @app.exception_handler(ProtocolError)
    async def protocol_error(request: Request, err: ProtocolError) -> JSONResponse:
        return JSONResponse({"error": str(err)}, status_code=err.status)

    def unknown_model(model: str) -> JSONResponse:
        return JSONResponse({"error": f"unknown model {model!r}; this server serves {name!r}"}, status_code=404)

    def ready_response(ok: bool) -> JSONResponse:
        body: dict[str, Any] = {"ready": ok}
        if state.warmup_error:
            body["error"] = f"warm-up failed: {state.warmup_error}"
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/v2/health/live")
    async def live() -> dict[str, bool]:
        return {"live": True}

    @app.get("/v2/health/ready")
    async def ready() -> JSONResponse:
        return ready_response(state.ready)

    @app.get("/v2")
    async def server_metadata() -> dict[str, Any]:
        return {"name": "calor-serve", "version": "1", "extensions": ["binary_tensor_data"]}

    @app.get("/v2/models/{model}")
    async def model_metadata(model: str) -> Any:
        if model != name:
            return unknown_model(model)

        def tensor(spec: Any) -> dict[str, Any]:
            return {"name": spec.name, "datatype": spec.datatype, "shape": [-1, *spec.dims]}

        return {
            "name": name, "versions": ["1"], "platform": backend.platform,
            "inputs": [tensor(source.input)], "outputs": [tensor(source.output)],
            "parameters": {"backend": backend.name, "providers": backend.providers, "max_batch": cfg.max_batch,
                           "backend_attempts": [{"backend": a["backend"], "used": a["used"]} for a in attempts],
                           "source": source.describe()},
        }  # fmt: skip

    @app.get("/v2/models/{model}/ready")
    async def model_ready(model: str) -> JSONResponse:
        return unknown_model(model) if model != name else ready_response(state.ready)

    @app.post("/v2/models/{model}/infer")
    async def infer(model: str, request: Request) -> Response:
        if model != name:
            return unknown_model(model)
        if not state.ready:
            return JSONResponse({"error": "model is not ready (warming up)"}, status_code=503)
        if state.inflight >= cfg.max_inflight:
            return JSONResponse({"error": f"server busy: {state.inflight} infer requests in flight (limit "
                                          f"{cfg.max_inflight}); retry later"},
                                status_code=503, headers={"Retry-After": "1"})  # fmt: skip
        state.inflight += 1
        metrics.inflight.inc()
        try:
            return await _infer(request)
        finally:
            state.inflight -= 1
            metrics.inflight.dec()

    async def _infer(request: Request) -> Response:
        start = time.perf_counter()
        body = await _read_body_in_time(request, cfg.max_body_bytes, cfg.body_timeout_s)
        parsed = await parser.parse(body, request.headers.get(HEADER_LENGTH))
        del body
        try:
            y = await batcher.submit(parsed.x)
        except Exception as err:  # noqa: BLE001 - a backend failure is the server's, reported as 500
            log.exception("inference failed")
            return JSONResponse({"error": f"inference failed: {type(err).__name__}: {err}"}, status_code=500)
        try:
            content, headers, media_type = encode_infer_response(name, parsed, y, source.output)
        except NonFiniteOutput as err:
            log.error("%s", err)
            return JSONResponse({"error": str(err)}, status_code=500)
        metrics.request_latency.labels(name).observe(time.perf_counter() - start)
        return Response(content, headers=headers, media_type=media_type)

    @app.get("/metrics")
    async def prometheus() -> Response:
        content, media_type = metrics.render()
        return Response(content, media_type=media_type)

    return app
