"""Prometheus metrics of one app (a registry of its own, so two apps in one process never clash)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "resnetkit_requests", "HTTP requests answered", ["route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "resnetkit_request_seconds",
            "Time to answer a request",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "resnetkit_batch_images", "Images in each model batch", buckets=BATCH_BUCKETS, registry=self.registry
        )
        self.queue_depth = Gauge("resnetkit_queue_images", "Images waiting for a batch", registry=self.registry)
        self.images = Counter("resnetkit_images", "Images classified", registry=self.registry)
