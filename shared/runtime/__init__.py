"""The runtime every service shares: NATS connection, streams, KV, the durable consumer loop with DLQ,
heartbeats, metrics, structured logs, DuckDB migrations and processed-event bookkeeping."""

from shared.runtime.bus import Bus, connect
from shared.runtime.consumer import ConsumerSpec, Delivery, PermanentError, run_consumer
from shared.runtime.service import ServiceRunner
from shared.runtime.settings import RuntimeSettings

__all__ = [
    "Bus",
    "ConsumerSpec",
    "Delivery",
    "PermanentError",
    "RuntimeSettings",
    "ServiceRunner",
    "connect",
    "run_consumer",
]
