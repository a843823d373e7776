"""Prometheus metrics of one ``gavel serve`` app (its own registry, so two apps in one process do not mix)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("gavel_requests", "HTTP requests answered, by endpoint and status code",
                                ["endpoint", "status"], registry=self.registry)
        self.latency = Histogram("gavel_request_seconds", "Time to answer a request, by endpoint", ["endpoint"],
                                 buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.batch_size = Histogram("gavel_batch_size", "Items handed to the model in one batch",
                                    buckets=_BATCH_BUCKETS, registry=self.registry)
        self.queue_depth = Gauge("gavel_queue_depth", "Items waiting for the model", registry=self.registry)
        self.items = Counter("gavel_items", "Items judged, by status", ["status"], registry=self.registry)
        self.parse_failures = Counter("gavel_parse_failures", "Items whose verdict could not be read",
                                      registry=self.registry)
