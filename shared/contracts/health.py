"""Service health and dead letters."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from shared.contracts.envelope import Event, UtcDatetime


class Heartbeat(Event):
    """A service's liveness and counters, written to KV ``health.<service>`` every few seconds."""

    SCHEMA: ClassVar[str] = "bastion.health.heartbeat"
    VERSION: ClassVar[str] = "1.0"

    service: str = Field(max_length=64)
    instance: str = Field(max_length=128)
    status: Literal["starting", "ok", "degraded", "stopping"]
    started_at: UtcDatetime
    processed: int = Field(ge=0)
    failed: int = Field(ge=0)
    dead_lettered: int = Field(ge=0)
    lag: int = Field(ge=0, description="Messages waiting in this service's consumers")
    detail: dict[str, str] = Field(default_factory=dict)


class DeadLetter(Event):
    """A message a service could not process, with the reason. Published on ``dlq.v1.<service>``."""

    SCHEMA: ClassVar[str] = "bastion.dlq.message"
    VERSION: ClassVar[str] = "1.0"

    service: str = Field(max_length=64)
    consumer: str = Field(max_length=128)
    subject: str = Field(max_length=512)
    stream_sequence: int
    deliveries: int
    kind: Literal["permanent", "exhausted"]
    reason: str = Field(max_length=2000)
    payload_b64: str = Field(description="The original payload, base64, cut at 64 KiB")
    payload_truncated: bool = False
