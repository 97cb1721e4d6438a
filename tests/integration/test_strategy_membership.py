"""Leases, per-symbol state and symbol discovery on a real nats-server (the NATS adapters of the workers)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from nats.aio.client import Client as NATS
from nats.js.kv import KeyValue

from services.strategy.adapters.nats_kv import (
    STATE_BUCKET,
    WORKERS_BUCKET,
    KvStates,
    Membership,
    bucket,
    discover_symbols,
    loop_bus,
    prepare_consumer,
)
from services.strategy.handlers import StateConflict
from shared.contracts.market_data import OHLCVBar
from shared.runtime.bus import Bus
from shared.runtime.consumer import ConsumerSpec, Delivery, consumer_config, decoder_for
from shared.runtime.settings import RuntimeSettings
from tests.support.wait import eventually
from tests.unit.strategy.helpers import bar


async def test_a_worker_name_has_one_lease_at_a_time_and_a_dead_holders_lease_expires(nc: NATS) -> None:
    js = nc.jetstream()
    kv = await bucket(js, WORKERS_BUCKET, ttl=5.0)
    first = Membership(js, kv, "w1", "token-1")
    second = Membership(js, kv, "w1", "token-2")  # the same name in another process
    assert await first.acquire()
    assert not await second.acquire()
    assert await first.refresh(["INFY"])
    members = await first.members()
    assert members["w1"].token == "token-1"
    assert members["w1"].held == ("INFY",)
    # first stops refreshing (killed): its key ages out and the name is free again
    await eventually(second.acquire, timeout=20, what="the dead lease to expire")
    assert not await first.refresh([])  # the old holder learns it lost the lease
    await second.release()
    assert await first.members() == {}


async def test_a_lease_that_ages_out_while_acquire_looks_at_it_is_taken(nc: NATS) -> None:
    """nats-py's create reads the key twice; if the old lease expires between the reads, the name is free."""
    js = nc.jetstream()
    kv = await bucket(js, WORKERS_BUCKET, ttl=60.0)
    old = Membership(js, kv, "w1", "token-1")
    assert await old.acquire()
    real_get = kv._get
    expired: list[bool] = []

    async def get_after_expiry(key: str, revision: int | None = None) -> KeyValue.Entry:
        if not expired:  # the server ages the old lease out right here, as max_age would
            subject = f"$KV.{WORKERS_BUCKET}.{key}"
            expired.append(await js.purge_stream(f"KV_{WORKERS_BUCKET}", subject=subject))
        return await real_get(key, revision)

    kv._get = get_after_expiry  # type: ignore[method-assign]
    heir = Membership(js, kv, "w1", "token-2")
    assert await heir.acquire()
    assert expired == [True]
    kv._get = real_get  # type: ignore[method-assign]
    assert (await heir.members())["w1"].token == "token-2"


async def test_state_is_written_only_by_whoever_read_the_latest_revision(nc: NATS) -> None:
    states = KvStates(await bucket(nc.jetstream(), STATE_BUCKET))
    assert await states.load("M&M") == (None, 0)
    rev = await states.save("M&M", b"one", 0)
    with pytest.raises(StateConflict):
        await states.save("M&M", b"stale", 0)
    rev2 = await states.save("M&M", b"two", rev)
    with pytest.raises(StateConflict):
        await states.save("M&M", b"stale", rev)
    assert await states.load("M&M") == (b"two", rev2)


async def test_symbols_are_discovered_from_the_bar_subjects_in_the_stream(nats_url: str) -> None:
    bus = await Bus.connect(RuntimeSettings(service="feeder", nats_url=nats_url))
    try:
        await bus.ensure_streams(["MARKETDATA"])
        assert await discover_symbols(bus.js) == set()
        await bus.publish_many([(b.subject(), b) for b in (bar(0, 1.0, "INFY"), bar(0, 1.0, "M&M"))])
        assert await discover_symbols(bus.js) == {"INFY", "M&M"}
    finally:
        await bus.close()


async def test_a_consumer_left_with_unacked_messages_is_rewound_to_its_ack_floor(nats_url: str) -> None:
    bus = await Bus.connect(RuntimeSettings(service="feeder", nats_url=nats_url))
    try:
        await bus.ensure_streams(["MARKETDATA"])
        bars = [bar(i, 1.0, "INFY") for i in range(10)]
        await bus.publish_many([(b.subject(), b) for b in bars])
        spec = ConsumerSpec(
            "strategy-bars-INFY", "MARKETDATA", ["md.v1.bar.INFY"], decoder_for(OHLCVBar), _noop
        )
        config = consumer_config(spec)
        assert not await prepare_consumer(bus.js, "MARKETDATA", config)  # created
        dead = await bus.js.pull_subscribe_bind(durable=spec.name, stream="MARKETDATA")
        msgs = await dead.fetch(6, timeout=2)
        for m in msgs[:2]:
            await m.ack_sync()  # the dead worker acked 2 and died holding 4
        await dead.unsubscribe()
        assert await prepare_consumer(bus.js, "MARKETDATA", config)  # rewound
        assert not await prepare_consumer(bus.js, "MARKETDATA", config)  # nothing pending now
        await loop_bus(bus).js.add_consumer("MARKETDATA", config)  # the loop's create keeps the rewind
        heir = await bus.js.pull_subscribe_bind(durable=spec.name, stream="MARKETDATA")
        got = await heir.fetch(8, timeout=2)
        ids = [b.event_id for b in bars]
        assert [ids.index(OHLCVBar.from_json(m.data).event_id) for m in got] == list(range(2, 10))
    finally:
        await bus.close()


async def test_a_consumer_is_rewound_once_to_the_same_floor_so_delivery_counts_add_up(nats_url: str) -> None:
    """A bar that kills every worker that runs it: the first heir gets the consumer rewound (its messages
    count deliveries from 1 again); the next heir, finding nothing acked since, gets it as it is, delivery
    counts and all, so the loop can isolate and dead-letter the bar. Once a later message is acked, the
    floor has moved and a death there is rewound again."""
    bus = await Bus.connect(RuntimeSettings(service="feeder", nats_url=nats_url))
    try:
        await bus.ensure_streams(["MARKETDATA"])
        bars = [bar(i, 1.0, "INFY") for i in range(7)]
        await bus.publish_many([(b.subject(), b) for b in bars])
        spec = ConsumerSpec(
            "strategy-bars-INFY", "MARKETDATA", ["md.v1.bar.INFY"], decoder_for(OHLCVBar), _noop, ack_wait=1.0
        )
        config = consumer_config(spec)

        async def worker_dies(acks: int) -> list[int]:
            """A worker fetches 5, acks the first ``acks`` and dies; the delivery counts of what it got."""
            sub = await bus.js.pull_subscribe_bind(durable=spec.name, stream="MARKETDATA")
            msgs = await sub.fetch(5, timeout=10)  # a dead worker's batch comes back after ack_wait
            for m in msgs[:acks]:
                await m.ack_sync()
            await sub.unsubscribe()
            return [m.metadata.num_delivered for m in msgs]

        assert not await prepare_consumer(bus.js, "MARKETDATA", config)  # created
        await worker_dies(acks=2)
        assert await prepare_consumer(bus.js, "MARKETDATA", config)  # rewound to just after bar 1
        assert await worker_dies(acks=0) == [1] * 5  # the first heir: counted from 1 again, and dies
        assert not await prepare_consumer(bus.js, "MARKETDATA", config)  # not rewound again to that floor
        info = await bus.js.consumer_info("MARKETDATA", spec.name)
        assert (info.num_ack_pending, info.ack_floor.stream_seq) == (5, 2)  # the dead batch, kept
        assert await worker_dies(acks=1) == [2] * 5  # the same batch again, counted on; one acked, death
        assert await prepare_consumer(bus.js, "MARKETDATA", config)  # a new floor: rewound
    finally:
        await bus.close()


async def _noop(_batch: Sequence[Delivery]) -> None:
    return None
