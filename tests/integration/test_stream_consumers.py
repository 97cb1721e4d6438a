"""``bastion streams consumers`` and ``remove-consumer`` on a real nats-server, as the operator: a consumer
nobody reads any more (a symbol taken out of the configuration) is listed as such and can be removed, its
messages staying in the stream; one a service is pulling from, now or a moment ago, is refused."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nats
import pytest
from nats.js.api import AckPolicy, ConsumerConfig, ConsumerInfo, SequenceInfo, StorageType, StreamConfig

from bastion.natsd import NatsServer
from bastion.streams import _busy
from tests.integration.test_stream_retention import bastion
from tests.support.secured import PASSWORDS, operator_home
from tests.support.wait import eventually


@pytest.fixture
def home(secured_server: NatsServer, tmp_path: Path) -> Path:
    return operator_home(secured_server, tmp_path / "home")


@pytest.fixture
async def js(secured_server: NatsServer) -> AsyncIterator[nats.js.JetStreamContext]:
    nc = await nats.connect(secured_server.url, user="operator", password=PASSWORDS["operator"])
    js = nc.jetstream()
    await js.add_stream(StreamConfig("MARKETDATA", subjects=["md.>"], storage=StorageType.FILE))
    for i, symbol in enumerate(["TCS", "TCS", "TCS", "INFY"]):
        await js.publish(f"md.v1.bar.{symbol}", f"bar {i}".encode(), headers={"Nats-Msg-Id": f"b{i}"})
    yield js
    await nc.close()


def table(stdout: str) -> dict[str, list[str]]:
    """The rows of a printed table, by consumer name."""
    rows = {}
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if len(cells) == 7 and cells[0] == "MARKETDATA":
            rows[cells[1]] = cells[2:]
    return rows


async def consumers(js: nats.js.JetStreamContext) -> set[str]:
    return {c.name for c in await js.consumers_info("MARKETDATA")}


async def test_a_consumer_nobody_reads_is_listed_and_removed_and_its_messages_stay(
    js: nats.js.JetStreamContext, home: Path
) -> None:
    # a strategy consumer of a symbol no longer configured: created, never read again
    await js.add_consumer(
        "MARKETDATA",
        ConsumerConfig(
            durable_name="strategy-bars-TCS", ack_policy=AckPolicy.EXPLICIT, filter_subject="md.v1.bar.TCS"
        ),
    )
    # a service reading all bars right now: its pull request waits on the server
    reader = await js.pull_subscribe("md.>", durable="analytics-bars", stream="MARKETDATA")
    for msg in await reader.fetch(4, timeout=5):
        await msg.ack_sync()
    waiting = asyncio.create_task(reader.fetch(1, timeout=30))

    async def pulling() -> ConsumerInfo | None:
        info = await js.consumer_info("MARKETDATA", "analytics-bars")
        return info if info.num_waiting else None

    await eventually(pulling, what="a waiting pull request")
    first = (await js.get_msg("MARKETDATA", 1)).time
    assert first is not None

    listed = bastion(home, "streams", "consumers")
    assert listed.returncode == 0, listed.stderr
    rows = table(listed.stdout)
    assert rows["strategy-bars-TCS"] == ["md.v1.bar.TCS", "3", first.strftime("%Y-%m-%d %H:%M"), "-", "no"]
    assert rows["analytics-bars"][:2] == ["md.>", "0"]
    assert rows["analytics-bars"][-1] == "yes"
    assert "Not read by any running service now, with messages unread: MARKETDATA/strategy-bars-TCS." in (
        listed.stdout.replace("\n", " ")
    )
    assert bastion(home, "streams", "consumers", "marketdata").stdout == listed.stdout
    narrow = bastion(home, "streams", "consumers", env={"COLUMNS": "80"}).stdout  # wrapped, never cut
    assert "…" not in narrow
    assert "strategy-bars-TCS" in narrow.replace("│", "").replace(" ", "").replace("\n", "")
    piped = bastion(home, "streams", "consumers", env={"COLUMNS": ""}).stdout  # no terminal: a row a line
    when = first.strftime("%Y-%m-%d %H:%M")
    assert any(
        "strategy-bars-TCS" in line and "md.v1.bar.TCS" in line and when in line for line in piped.split("\n")
    )
    assert "no consumers on SIGNALS" in bastion(home, "streams", "consumers", "SIGNALS").stdout

    refused = bastion(home, "streams", "remove-consumer", "MARKETDATA", "analytics-bars", "--yes")
    assert refused.returncode == 2
    assert "MARKETDATA/analytics-bars is being read: a service is pulling from it now" in refused.stderr
    unasked = bastion(home, "streams", "remove-consumer", "MARKETDATA", "strategy-bars-TCS")
    assert unasked.returncode == 2
    assert "cannot be undone: run it in a terminal or pass --yes" in unasked.stderr
    assert await consumers(js) == {"strategy-bars-TCS", "analytics-bars"}

    removed = bastion(home, "streams", "remove-consumer", "marketdata", "strategy-bars-TCS", "--yes")
    assert removed.returncode == 0, removed.stderr
    assert "3 messages unread; they stay in the stream" in removed.stdout
    assert "MARKETDATA/strategy-bars-TCS: removed" in removed.stdout
    assert await consumers(js) == {"analytics-bars"}
    assert (await js.stream_info("MARKETDATA")).state.messages == 4
    waiting.cancel()

    gone = bastion(home, "streams", "remove-consumer", "MARKETDATA", "strategy-bars-TCS", "--yes")
    assert gone.returncode == 2
    assert gone.stderr.strip().splitlines() == [
        "error: no consumer 'strategy-bars-TCS' on stream MARKETDATA (`bastion streams consumers MARKETDATA` "
        "lists them)"
    ]
    bad = bastion(home, "streams", "consumers", "BARS")
    assert bad.returncode == 2
    assert "no stream 'BARS': Bastion's streams are MARKETDATA, ANALYTICS" in bad.stderr
    assert "Traceback" not in bad.stderr + gone.stderr + refused.stderr + unasked.stderr


def test_a_consumer_is_in_use_while_a_pull_waits_or_a_delivery_was_recent() -> None:
    """A busy service asks with ``no_wait`` between batches, so no pull request of its may be waiting."""
    now = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)

    def info(waiting: int, delivered_ago: timedelta | None, ack_wait: float = 30.0) -> ConsumerInfo:
        delivered = SequenceInfo(5, 5, now - delivered_ago if delivered_ago is not None else None)
        config = ConsumerConfig(durable_name="c", ack_wait=ack_wait)
        return ConsumerInfo("c", "MARKETDATA", config, now, delivered=delivered, num_waiting=waiting)

    assert _busy(info(1, None), now)
    assert _busy(info(0, timedelta(seconds=59)), now)
    assert not _busy(info(0, timedelta(seconds=61)), now)
    assert _busy(info(0, timedelta(seconds=100), ack_wait=60.0), now)  # within twice its ack wait
    assert not _busy(info(0, None), now)
