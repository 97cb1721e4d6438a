"""Read what a JetStream stream holds, for assertions: every stored message on a subject, in stream order."""

from __future__ import annotations

from contextlib import aclosing

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import ServiceUnavailableError

from shared.runtime.stored import stored_batches
from tests.support.wait import eventually


async def stored_messages(js: JetStreamContext, stream: str, subject: str = ">") -> list[Msg]:
    """Every message stored in ``stream`` on ``subject`` (wildcards allowed), via an ephemeral consumer.

    In a cluster, just after a leader change, the new consumer may answer a fetch with 503 (no leader
    yet); the read then starts again with a fresh consumer, for up to 30 s."""

    async def read() -> tuple[list[Msg]] | None:  # a tuple: truthy for ``eventually`` even when empty
        out: list[Msg] = []
        try:
            async with aclosing(stored_batches(js, stream, subject, timeout=5)) as batches:
                async for batch in batches:
                    out.extend(batch)
        except ServiceUnavailableError:
            return None
        return (out,)

    (messages,) = await eventually(read, timeout=30, interval=0.2, what=f"a read of {stream}")
    return messages
