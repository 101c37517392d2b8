"""Prometheus metrics of one server instance (own registry: two apps in one process never clash)."""

from __future__ import annotations

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
        self.backend = Info("inference_backend", "Backend serving the model", registry=r)
        self.ready = Gauge("inference_ready", "1 once the backend is warmed up", registry=r)

    def observe_batch(self, rows: int, seconds: float) -> None:
        self.batch_size.observe(rows)
        self.batch_latency.observe(seconds)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
