"""Prometheus metrics of one server instance (own registry: two apps in one process never clash).

``StatusCounter`` is an ASGI middleware that counts every response by route template and status
code — 404 for unknown paths and 500 for unhandled exceptions included — so /metrics sees what
clients see, not only what the infer handler chose to count.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


def _batch_buckets(max_batch: int) -> tuple[float, ...]:
    buckets, b = [], 1
    while b < max_batch:
        buckets.append(float(b))
        b *= 2
    return (*buckets, float(max_batch))


class ServerMetrics:
    def __init__(self, max_batch: int):
        self.registry = CollectorRegistry()
        r = self.registry
        self.request_latency = Histogram(
            "inference_request_duration_seconds", "Infer request latency, body read to response",
            ["model"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.batch_size = Histogram(
            "inference_batch_size", "Rows per backend call after micro-batching",
            buckets=_batch_buckets(max_batch), registry=r,
        )  # fmt: skip
        self.batch_latency = Histogram(
            "inference_batch_duration_seconds", "Backend compute time per batch", buckets=LATENCY_BUCKETS, registry=r
        )
        self.requests = Counter("inference_requests", "Infer requests by HTTP status", ["model", "code"], registry=r)
        self.responses = Counter("http_responses", "Every HTTP response by route template, method and status",
                                 ["route", "method", "code"], registry=r)  # fmt: skip
        self.inflight = Gauge("inference_inflight_requests", "Infer requests being read, parsed or computed",
                              registry=r)  # fmt: skip
        self.backend = Info("inference_backend", "Backend serving the model", registry=r)
        self.ready = Gauge("inference_ready", "1 once the backend is warmed up", registry=r)

    def observe_batch(self, rows: int, seconds: float) -> None:
        self.batch_size.observe(rows)
        self.batch_latency.observe(seconds)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


INFER_ROUTE = "/v2/models/{model}/infer"


class StatusCounter:
    """ASGI middleware: count each HTTP response in ``metrics`` (infer requests also by model)."""

    def __init__(self, app: Any, metrics: ServerMetrics, model_name: str):
        self.app, self.metrics, self.model_name = app, metrics, model_name

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # an exception before the response started becomes the server's 500

        async def record(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            self._count(scope, status)

    def _count(self, scope: dict[str, Any], status: int) -> None:
        route = getattr(scope.get("route"), "path", None) or "unmatched"  # a template: bounded label values
        self.metrics.responses.labels(route, scope.get("method", ""), str(status)).inc()
        if route == INFER_ROUTE:
            requested = (scope.get("path_params") or {}).get("model")
            model = self.model_name if requested == self.model_name else "unknown"
            self.metrics.requests.labels(model, str(status)).inc()
