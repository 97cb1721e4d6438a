"""Prometheus metrics shared by every service, labelled by service and consumer."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

PROCESSED = Counter("bastion_messages_processed", "Messages handled and acked", ["service", "consumer"])
FAILED = Counter(
    "bastion_messages_failed", "Handler failures (retried or dead-lettered)", ["service", "consumer"]
)
DEAD_LETTERED = Counter("bastion_messages_dead_lettered", "Messages sent to the DLQ", ["service", "consumer"])
LATENCY = Histogram(
    "bastion_handler_seconds",
    "Handler time per batch",
    ["service", "consumer"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
LAG = Gauge("bastion_consumer_lag", "Messages waiting for this consumer", ["service", "consumer"])


def serve_metrics(port: int) -> None:
    """Expose /metrics on ``port`` (0 disables)."""
    if port:
        start_http_server(port, addr="0.0.0.0")
