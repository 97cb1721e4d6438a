"""Read what a JetStream stream holds, for assertions: every stored message on a subject, in stream order."""

from __future__ import annotations

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import ServiceUnavailableError

from tests.support.wait import eventually


async def stored_messages(js: JetStreamContext, stream: str, subject: str = ">") -> list[Msg]:
    """Every message stored in ``stream`` on ``subject`` (wildcards allowed), via an ephemeral consumer.

    In a cluster, just after a leader change, the new consumer may answer a fetch with 503 (no leader
    yet); the read then starts again with a fresh consumer, for up to 30 s."""
    info = await js.stream_info(stream, subjects_filter=subject)
    expected = sum((info.state.subjects or {}).values())
    if expected == 0:
        return []

    async def read() -> list[Msg] | None:
        cfg = ConsumerConfig(
            ack_policy=AckPolicy.NONE,
            deliver_policy=DeliverPolicy.ALL,
            filter_subject=subject,
            inactive_threshold=30,
        )
        sub = await js.pull_subscribe(subject, durable=None, stream=stream, config=cfg)
        out: list[Msg] = []
        try:
            while len(out) < expected:
                out.extend(await sub.fetch(min(1000, expected - len(out)), timeout=5))
        except ServiceUnavailableError:
            return None
        finally:
            await sub.unsubscribe()
        return out

    messages: list[Msg] = await eventually(read, timeout=30, interval=0.2, what=f"a read of {stream}")
    return messages
