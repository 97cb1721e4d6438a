"""Read back what a JetStream stream holds: for CLI commands (``bastion audit`` beside a running service)
and for the tests' assertions alike."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

Progress = Callable[[int, int], None]


async def stored_batches(
    js: JetStreamContext,
    stream: str,
    subject: str = ">",
    *,
    batch: int = 1000,
    timeout: float = 10,
    progress: Progress | None = None,
) -> AsyncGenerator[list[Msg], None]:
    """The messages stored in ``stream`` on ``subject`` (wildcards allowed) when it starts, in stream order,
    ``batch`` at a time, through an ephemeral consumer: nothing is acked, and nothing stays behind once the
    generator is closed (use ``contextlib.aclosing``). ``progress(done, total)`` after each batch.

    Errors come as nats-py raises them: ``NotFoundError`` for a missing stream, a fetch's timeout or
    ``ServiceUnavailableError`` (a cluster without a leader for a moment)."""
    info = await js.stream_info(stream, subjects_filter=subject)
    total, done = sum((info.state.subjects or {}).values()), 0
    if total == 0:
        return
    config = ConsumerConfig(
        ack_policy=AckPolicy.NONE,
        deliver_policy=DeliverPolicy.ALL,
        filter_subject=subject,
        inactive_threshold=30,
    )
    sub = await js.pull_subscribe(subject, durable=None, stream=stream, config=config)
    try:
        while done < total:
            messages = await sub.fetch(min(batch, total - done), timeout=timeout)
            done += len(messages)
            yield messages
            if progress is not None:
                progress(done, total)
    finally:
        await sub.unsubscribe()
