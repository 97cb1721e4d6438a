"""The consumer loop's fetching on a real nats-server: a trickle is handled as it comes (no waiting for a
full batch), a backlog in full batches, and a batch is acked only after its handler returned."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from shared.contracts import OHLCVBar
from shared.runtime.bus import Bus
from shared.runtime.consumer import ConsumerLoop, ConsumerSpec, Delivery, decoder_for
from tests.integration.test_runtime import bar
from tests.support.wait import eventually


async def test_a_single_message_on_an_idle_consumer_is_handled_at_once_not_after_the_batch_fills(
    bus: Bus,
) -> None:
    handled: list[tuple[int, float]] = []

    async def handler(batch: Sequence[Delivery]) -> None:
        now = time.perf_counter()
        handled.extend((d.stream_sequence, now) for d in batch)

    spec = ConsumerSpec(
        "trickle", "MARKETDATA", ["md.v1.bar.>"], decoder_for(OHLCVBar), handler, batch=100, fetch_timeout=3.0
    )
    stop = asyncio.Event()
    loop = ConsumerLoop(bus, spec, stop)
    task = asyncio.create_task(loop.run())
    try:
        await eventually(lambda: _consumer_exists(bus, "trickle"), what="consumer created")
        await asyncio.sleep(0.3)  # the loop is now waiting in a pull request
        latencies = []
        for i in range(5):
            sent = time.perf_counter()
            await bus.publish(bar(i))

            def enough(n: int = i + 1) -> bool:
                return len(handled) >= n

            await eventually(enough, timeout=5, interval=0.002, what="handled")
            latencies.append(handled[-1][1] - sent)
        # nats-py's fetch would wait for 100 messages or the 3 s timeout; the loop takes the first at once
        assert max(latencies) < 0.5, latencies
        await eventually(lambda: loop.stats.processed == 5, what="all acked")
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_a_backlog_comes_in_full_batches_acked_only_after_the_handler_returned(bus: Bus) -> None:
    await bus.publish_many([(bar(i).subject(), bar(i)) for i in range(250)])
    sizes: list[int] = []
    release = asyncio.Event()
    inside = asyncio.Event()

    async def handler(batch: Sequence[Delivery]) -> None:
        sizes.append(len(batch))
        if len(sizes) == 1:
            inside.set()
            await release.wait()  # the first batch's effects are "being committed"

    spec = ConsumerSpec("backlog", "MARKETDATA", ["md.v1.bar.>"], decoder_for(OHLCVBar), handler, batch=100)
    stop = asyncio.Event()
    loop = ConsumerLoop(bus, spec, stop)
    task = asyncio.create_task(loop.run())
    try:
        await asyncio.wait_for(inside.wait(), 10)
        info = await bus.js.consumer_info("MARKETDATA", "backlog")
        assert info.num_ack_pending == 100  # delivered, handler running: nothing acked yet
        assert info.ack_floor.stream_seq == 0
        release.set()
        await eventually(lambda: loop.stats.processed == 250, timeout=10, what="250 processed")
        assert sizes == [100, 100, 50]

        async def all_acked() -> bool:  # the acks are sent after each handler; the server takes them in turn
            info = await bus.js.consumer_info("MARKETDATA", "backlog")
            return (info.num_ack_pending, info.num_pending) == (0, 0)

        await eventually(all_acked, timeout=10, what="every message acked, none left")
    finally:
        stop.set()
        release.set()
        await asyncio.wait_for(task, 10)


async def test_a_batch_whose_handler_failed_is_not_acked_and_comes_again_in_order(bus: Bus) -> None:
    await bus.publish_many([(bar(i).subject(), bar(i)) for i in range(30)])
    seen: list[int] = []
    failed = False

    async def handler(batch: Sequence[Delivery]) -> None:
        nonlocal failed
        if not failed:
            failed = True
            raise ConnectionError("commit failed")
        seen.extend(d.stream_sequence for d in batch)

    spec = ConsumerSpec("flaky", "MARKETDATA", ["md.v1.bar.>"], decoder_for(OHLCVBar), handler, batch=10)
    stop = asyncio.Event()
    loop = ConsumerLoop(bus, spec, stop)
    task = asyncio.create_task(loop.run())
    try:
        await eventually(lambda: loop.stats.processed == 30, timeout=15, what="30 processed")
        assert seen == list(range(1, 31))
        assert loop.stats.dead_lettered == 0
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def _consumer_exists(bus: Bus, name: str) -> bool:
    try:
        await bus.js.consumer_info("MARKETDATA", name)
    except Exception:
        return False
    return True
