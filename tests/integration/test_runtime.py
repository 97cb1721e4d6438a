"""The shared runtime against a real nats-server: dedupe, DLQ, in-place retry, redelivery, KV."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, MutableMapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog

from bastion.natsd import NatsServer
from shared.contracts import DeadLetter, Event, OHLCVBar
from shared.runtime.bus import Bus, connect
from shared.runtime.consumer import ConsumerLoop, ConsumerSpec, Delivery, PermanentError, decoder_for
from shared.runtime.settings import RuntimeSettings
from tests.support.wait import eventually

T0 = datetime(2024, 1, 1, 9, 15, tzinfo=UTC)


def bar(i: int, symbol: str = "INFY") -> OHLCVBar:
    ts = T0 + timedelta(minutes=i)
    return OHLCVBar.build(
        producer="marketdata",
        key=OHLCVBar.key_for(symbol, "1m", ts.isoformat()),
        occurred_at=ts,
        symbol=symbol,
        interval="1m",
        timestamp=ts,
        open=100 + i,
        high=101 + i,
        low=99 + i,
        close=100.5 + i,
        volume=1000,
        source="synthetic",
    )


async def stream_count(bus: Bus, stream: str) -> int:
    return int((await bus.js.stream_info(stream)).state.messages)


async def test_republishing_an_event_id_is_dropped_by_jetstream_dedupe(bus: Bus) -> None:
    events = [(bar(i).subject(), bar(i)) for i in range(50)]
    assert await bus.publish_many(events) == 50
    assert await bus.publish_many(events) == 0
    ack = await bus.publish(bar(3))
    assert ack.duplicate
    assert await stream_count(bus, "MARKETDATA") == 50


async def test_poison_message_goes_to_dlq_and_the_loop_keeps_processing(bus: Bus) -> None:
    seen: list[int] = []

    async def handler(batch: Sequence[Delivery]) -> None:
        seen.extend(int(d.event.open) for d in batch)

    stop = asyncio.Event()
    spec = ConsumerSpec("t-poison", "MARKETDATA", ["md.v1.bar.>"], decoder_for(OHLCVBar), handler, batch=10)
    loop = ConsumerLoop(bus, spec, stop)
    task = asyncio.create_task(loop.run())
    await bus.publish(bar(0))
    await bus.publish_raw("md.v1.bar.INFY", b"{not json")
    await bus.publish_raw("md.v1.bar.INFY", b'{"schema": "bastion.md.bar", "version": "9.0"}')
    await bus.publish(bar(1))
    await eventually(lambda: len(seen) == 2 and loop.stats.dead_lettered == 2, what="2 processed, 2 dlq")
    assert seen == [100, 101]
    sub = await bus.js.pull_subscribe("dlq.v1.testsvc", durable="dlq-reader", stream="DLQ")
    letters = [DeadLetter.from_json(m.data) for m in await sub.fetch(2, timeout=5)]
    assert [letter.kind for letter in letters] == ["permanent", "permanent"]
    assert "cannot decode" in letters[0].reason
    assert "not compatible" in letters[1].reason
    stop.set()
    await task


async def test_transient_failure_is_retried_in_place_keeping_order_then_dead_lettered(bus: Bus) -> None:
    seen: list[int] = []
    failures = {101: 2, 103: 99}  # 101 fails twice then works; 103 never works

    async def handler(batch: Sequence[Delivery]) -> None:
        for d in batch:
            price = int(d.event.open)
            if failures.get(price, 0) > 0:
                failures[price] -= 1
                raise RuntimeError(f"DuckDB busy for {price}")
        seen.extend(int(d.event.open) for d in batch)

    stop = asyncio.Event()
    spec = ConsumerSpec(
        "t-retry",
        "MARKETDATA",
        ["md.v1.bar.>"],
        decoder_for(OHLCVBar),
        handler,
        batch=10,
        max_deliver=3,
        backoff=(0.01,),
    )
    loop = ConsumerLoop(bus, spec, stop)
    await bus.publish_many([(bar(i).subject(), bar(i)) for i in range(6)])
    task = asyncio.create_task(loop.run())
    await eventually(lambda: len(seen) == 5, what="5 processed")
    assert seen == [100, 101, 102, 104, 105]
    assert loop.stats.dead_lettered == 1
    stop.set()
    await task


async def crash_mid_batch(bus: Bus, name: str, batch: int = 5) -> None:
    """A consumer ``name`` whose process dies in the middle of its first batch: nothing acked."""
    crashed = asyncio.Event()

    async def crashing(deliveries: Sequence[Delivery]) -> None:
        crashed.set()
        raise asyncio.CancelledError  # like a process dying mid-handler

    spec = ConsumerSpec(
        name, "MARKETDATA", ["md.v1.bar.>"], decoder_for(OHLCVBar), crashing, batch=batch, ack_wait=1.0
    )
    first = asyncio.create_task(ConsumerLoop(bus, spec, asyncio.Event()).run())
    await crashed.wait()
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_handler_crash_before_ack_redelivers_everything_in_order(bus: Bus) -> None:
    await bus.publish_many([(bar(i).subject(), bar(i)) for i in range(20)])
    await crash_mid_batch(bus, "t-crash")
    assert await handled_by_the_next_process(bus, "t-crash", 20) == [100 + i for i in range(20)]


async def handled_by_the_next_process(bus: Bus, name: str, n: int) -> list[int]:
    """The bars (their opens) a fresh loop on consumer ``name`` handles, in order, until ``n`` came."""
    seen: list[int] = []

    async def handler(batch: Sequence[Delivery]) -> None:
        seen.extend(int(d.event.open) for d in batch)

    stop = asyncio.Event()
    spec = ConsumerSpec(
        name, "MARKETDATA", ["md.v1.bar.>"], decoder_for(OHLCVBar), handler, batch=5, ack_wait=1.0
    )
    task = asyncio.create_task(ConsumerLoop(bus, spec, stop).run())
    await eventually(lambda: len(seen) >= n, timeout=15, what=f"all {n} handled")
    stop.set()
    await task
    return seen


async def test_a_partial_batch_left_unacked_by_a_crash_is_handled_before_newer_messages(bus: Bus) -> None:
    """The dead process had 3 of its 5 allowed messages in hand: the server hands the next process the newer
    ones at once and the 3 only after ack_wait; the loop must still handle them first."""
    await bus.publish_many([(bar(i).subject(), bar(i)) for i in range(3)])
    await crash_mid_batch(bus, "t-partial")
    await bus.publish_many([(bar(i).subject(), bar(i)) for i in range(3, 10)])
    assert await handled_by_the_next_process(bus, "t-partial", 10) == [100 + i for i in range(10)]


async def test_a_message_past_max_deliver_is_acked_if_it_was_handled_and_dead_lettered_if_not(
    bus: Bus,
) -> None:
    """Killed after its commit and before its acks (say, while publishing a long outbox): the bars come a
    second time, past max_deliver=1. Those the service had handled are acked (only their acks were lost);
    the one it had not is dead-lettered as exhausted. Neither reaches the handler again."""
    await bus.publish_many([(bar(i).subject(), bar(i)) for i in range(3)])
    await crash_mid_batch(bus, "t-lost-acks")
    seen: list[int] = []

    async def handler(batch: Sequence[Delivery]) -> None:
        seen.extend(int(d.event.open) for d in batch)

    def handled(events: Sequence[Event]) -> set[int]:
        return {i for i, e in enumerate(events) if isinstance(e, OHLCVBar) and e.open in (100, 101)}

    stop = asyncio.Event()
    spec = ConsumerSpec(
        "t-lost-acks",
        "MARKETDATA",
        ["md.v1.bar.>"],
        decoder_for(OHLCVBar),
        handler,
        batch=5,
        ack_wait=1.0,
        max_deliver=1,
        handled=handled,
    )
    loop = ConsumerLoop(bus, spec, stop)
    task = asyncio.create_task(loop.run())
    await eventually(lambda: loop.stats.dead_lettered == 1, timeout=15, what="one dead-lettered")
    await bus.publish(bar(3))
    await eventually(lambda: seen == [103], timeout=15, what="the next bar handled")
    stop.set()
    await task
    sub = await bus.js.pull_subscribe("dlq.v1.testsvc", durable="dlq-lost-acks", stream="DLQ")
    letters = [DeadLetter.from_json(m.data) for m in await sub.fetch(1, timeout=5)]
    assert [(letter.kind, letter.stream_sequence) for letter in letters] == [("exhausted", 3)]
    info = await bus.js.consumer_info("MARKETDATA", "t-lost-acks")
    assert info.num_ack_pending == 0  # the two handled ones were acked


Lethal = Callable[[Sequence[Delivery], int], bool]


async def lives(
    bus: Bus, name: str, lethal: Lethal, handled: list[int], done: Callable[[], bool]
) -> tuple[int, ConsumerLoop]:
    """Start a loop on consumer ``name`` again and again, as a supervisor restarts a dying process, until
    ``done()``. ``lethal(batch, call)`` says when a handler call (numbered from 1 in each life) kills the
    process: it then dies mid-handler with nothing of that call committed. Returns the lives and last loop."""
    count = 0
    while True:
        count += 1
        assert count <= 12, "still dying after 12 lives"
        stop, died, calls = asyncio.Event(), asyncio.Event(), [0]

        async def handler(
            batch: Sequence[Delivery], died: asyncio.Event = died, calls: list[int] = calls
        ) -> None:
            calls[0] += 1
            if lethal(batch, calls[0]):
                died.set()
                raise asyncio.CancelledError  # the process dies here
            handled.extend(int(d.event.open) for d in batch)

        spec = ConsumerSpec(
            name, "MARKETDATA", ["md.v1.bar.>"], decoder_for(OHLCVBar), handler, batch=5, ack_wait=1.0
        )
        spec.max_deliver = 3
        loop = ConsumerLoop(bus, spec, stop)
        task = asyncio.create_task(loop.run())

        def ended(died: asyncio.Event = died) -> bool:
            return died.is_set() or done()

        await eventually(ended, timeout=20, what="a death or the end")
        if not died.is_set():
            stop.set()
            await task
            return count, loop
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_a_message_that_kills_every_process_is_dead_lettered_alone_and_its_batch_is_handled(
    bus: Bus,
) -> None:
    """Bar 102 kills the process each time its batch is handled (a segfault in native code, say). After two
    deaths the batch is handled one bar at a time, so the next deaths are on 102 itself: only it is
    dead-lettered, after max_deliver starts; the bars of its batch before and after it are all handled."""
    await bus.publish_many([(bar(i).subject(), bar(i)) for i in range(10)])
    others = {100 + i for i in range(10)} - {102}
    handled: list[int] = []
    count, loop = await lives(
        bus,
        "t-killer",
        lambda batch, _: any(int(d.event.open) == 102 for d in batch),
        handled,
        lambda: others <= set(handled),
    )
    assert loop.stats.dead_lettered == 1
    assert count == 6, count  # died on 102 in its batch twice, then alone max_deliver times; then it is gone
    assert set(handled) == others
    sub = await bus.js.pull_subscribe("dlq.v1.testsvc", durable="dlq-killer", stream="DLQ")
    letters = [DeadLetter.from_json(m.data) for m in await sub.fetch(1, timeout=5)]
    assert [(letter.kind, letter.stream_sequence) for letter in letters] == [("exhausted", 3)]
    assert "started 3 times; the process died each time while handling it" in letters[0].reason
    info = await bus.js.consumer_info("MARKETDATA", "t-killer")
    assert (info.num_ack_pending, info.num_pending) == (0, 0)


async def test_a_batch_pending_through_many_outside_kills_is_handled_and_nothing_is_dead_lettered(
    bus: Bus,
) -> None:
    """Killed from outside again and again (a crash loop of another cause), each life getting one bar done:
    the bars after it come back far more often than max_deliver, but none was started that often, so all
    are handled, none is dead-lettered (delivery counts alone would have dead-lettered them)."""
    await bus.publish_many([(bar(i).subject(), bar(i)) for i in range(6)])
    for _ in range(2):
        await crash_mid_batch(bus, "t-outside")
    handled: list[int] = []
    count, loop = await lives(bus, "t-outside", lambda _, call: call > 1, handled, lambda: len(handled) >= 6)
    assert sorted(handled) == [100 + i for i in range(6)]
    assert loop.stats.dead_lettered == 0
    assert count >= 5, count  # the bars after the first came back past max_deliver
    assert await stream_count(bus, "DLQ") == 0


async def test_permanent_error_from_handler_dead_letters_only_that_message(bus: Bus) -> None:
    seen: list[int] = []

    async def handler(batch: Sequence[Delivery]) -> None:
        if any(int(d.event.open) == 102 for d in batch):
            raise PermanentError("violates invariant")
        seen.extend(int(d.event.open) for d in batch)

    stop = asyncio.Event()
    spec = ConsumerSpec("t-perm", "MARKETDATA", ["md.v1.bar.>"], decoder_for(OHLCVBar), handler, batch=10)
    loop = ConsumerLoop(bus, spec, stop)
    await bus.publish_many([(bar(i).subject(), bar(i)) for i in range(5)])
    task = asyncio.create_task(loop.run())
    await eventually(lambda: len(seen) == 4, what="4 processed")
    assert seen == [100, 101, 103, 104]
    assert loop.stats.dead_lettered == 1
    stop.set()
    await task


async def test_snapshots_bucket_holds_the_latest_value(bus: Bus) -> None:
    await bus.put_snapshot("analytics.INFY", {"n": 1})
    await bus.put_snapshot("analytics.INFY", {"n": 2})
    entry = await (await bus.snapshots()).get("analytics.INFY")
    assert entry.value == b'{"n":2}'
    with pytest.raises(ValueError, match="over"):
        await bus.put_snapshot("big", b"x" * (2 * 1024 * 1024))


async def test_closing_a_connection_is_not_warned_of_but_losing_the_server_is(
    nats_server: NatsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BASTION_NATS_URL", nats_server.url)
    monkeypatch.setenv("BASTION_HOME", str(tmp_path / "home"))
    settings = RuntimeSettings.from_env("marketdata")

    def warned(logs: Sequence[MutableMapping[str, Any]]) -> list[MutableMapping[str, Any]] | None:
        return [e for e in logs if e["event"] == "nats.disconnected"] or None

    with structlog.testing.capture_logs() as logs:
        ours = await connect(settings)
        await ours.close()  # a CLI command's normal end: nothing to warn of on its terminal
    assert warned(logs) is None
    with structlog.testing.capture_logs() as logs:
        kept = await connect(settings)
        nats_server.stop()
        await eventually(lambda: warned(logs), timeout=10, what="the lost server to be warned of")
        await kept.close()
