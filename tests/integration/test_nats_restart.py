"""Restart ``nats-server`` mid-stream (same port, same JetStream store) while analytics and execution run
as ``python -m services.<svc>``: both reconnect and resume, and the final counts equal the inputs' — no
bar lost, no output doubled (counted by unique cause ids and by total messages in the streams)."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Sequence
from pathlib import Path

import nats.errors
from nats.js.errors import APIError

from bastion.natsd import NatsServer
from shared.contracts.envelope import Event
from shared.contracts.market_data import OHLCVBar
from shared.runtime.bus import MSG_ID, Bus
from shared.runtime.settings import RuntimeSettings
from tests.integration.fault_support import count_subject, log_tail, read_subject, spawn, terminate
from tests.integration.test_analytics_service import expected_payloads, stream_payloads
from tests.integration.test_execution_support import write_config
from tests.support.wait import eventually
from tests.unit.analytics.support import bars
from tests.unit.execution.helpers import signal

BARS = 300  # per symbol
SYMBOLS = ("INFY", "TCS")


def feed() -> tuple[dict[str, list[OHLCVBar]], list[Event]]:
    """Bars of every symbol, each followed by a signal on it, interleaved across symbols."""
    series = {s: bars(s, BARS, seed=20 + i) for i, s in enumerate(SYMBOLS)}
    events: list[Event] = []
    for step in zip(*series.values(), strict=True):
        for b in step:
            events += [b, signal(b, "long" if b.timestamp.minute % 4 < 2 else "flat")]
    return series, events


async def publish_through_outages(bus: Bus, events: list[Event], deadline: float = 60) -> None:
    """Publish each event until the server acks it; a retry carries the same Nats-Msg-Id, so a copy the
    server did store before the outage is dropped, not doubled."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    for event in events:
        while not await _published(bus, event):
            assert loop.time() < end, f"could not publish {event.event_id} for {deadline}s"
            await asyncio.sleep(0.1)  # back off while the client reconnects


async def _published(bus: Bus, event: Event) -> bool:
    try:
        await bus.js.publish(
            event.subject(),  # type: ignore[attr-defined]
            event.to_json(),
            headers={MSG_ID: str(event.event_id)},
            timeout=2,
        )
    except (nats.errors.Error, APIError, TimeoutError):
        return False
    return True


async def consumer_state(bus: Bus, stream: str, consumer: str) -> tuple[int, int] | None:
    """``(pending, unacked)`` of a durable consumer, None while the server cannot say."""
    try:
        info = await bus.js.consumer_info(stream, consumer)
    except Exception:  # server still starting
        return None
    return int(info.num_pending or 0), int(info.num_ack_pending or 0)


CONSUMERS = {
    "analytics-bars": "MARKETDATA",
    "execution-bars": "MARKETDATA",
    "execution-signals": "SIGNALS",
    "execution-commands": "EXECUTION",
}


async def test_nats_server_restart_mid_stream_loses_and_doubles_nothing(
    nats_server: NatsServer, nats_url: str, tmp_path: Path
) -> None:
    feeder = await Bus.connect(RuntimeSettings(service="feeder", nats_url=nats_url))
    await feeder.ensure_streams(["MARKETDATA", "ANALYTICS", "SIGNALS", "EXECUTION", "AUDIT", "DLQ"])
    series, events = feed()
    half, total = len(events) // 2, BARS * len(SYMBOLS)
    await publish_through_outages(feeder, events[:half])

    data = tmp_path / "data"
    procs: dict[str, subprocess.Popen[bytes]] = {
        "analytics": spawn(
            "analytics", nats_url, data, BASTION_ANALYTICS_BATCH="25", BASTION_ANALYTICS_ACK_WAIT="2"
        ),
        "execution": spawn("execution", nats_url, data, BASTION_EXECUTION_CONFIG=str(write_config(tmp_path))),
    }

    def alive() -> None:
        for name, proc in procs.items():
            assert proc.poll() is None, f"{name} died:\n{log_tail(data, name)}"

    async def insights_at_least(n: int) -> bool:
        alive()
        return await count_subject(feeder.nc, "ANALYTICS", "analytics.v1.insight.>") >= n

    try:
        await eventually(lambda: insights_at_least(100), timeout=60, what="100 insights before the restart")
        await asyncio.to_thread(nats_server.restart)
        at_restart: int = await eventually(
            lambda: count_subject(feeder.nc, "ANALYTICS", "analytics.v1.insight.>"),
            timeout=20,
            what="the feeder reconnected",
        )
        assert at_restart < total, "analytics finished before the restart: not mid-stream"
        await publish_through_outages(feeder, events[half:])

        state: dict[str, object] = {}
        try:
            await eventually(lambda: insights_at_least(total), timeout=45, what=f"{total} insights")
        except AssertionError as exc:
            for name, stream in CONSUMERS.items():
                state[name] = await consumer_state(feeder, stream, name)
            raise AssertionError(f"{exc}; consumers' (pending, unacked): {state}") from None

        async def settled() -> bool:
            alive()
            state["decisions"] = await count_subject(feeder.nc, "EXECUTION", "risk.v1.decision.>")
            for name, stream in CONSUMERS.items():
                state[name] = await consumer_state(feeder, stream, name)
            return state["decisions"] == total and all(state[n] == (0, 0) for n in CONSUMERS)

        try:
            await eventually(settled, timeout=30, what="every consumer caught up")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; (pending, unacked) and decisions: {state}") from None
        alive()
    finally:
        codes = {name: await terminate(proc, 10) for name, proc in procs.items()}
    assert codes == {"analytics": 0, "execution": 0}, {n: log_tail(data, n) for n in procs}

    line = await check_every_bar_and_signal_once(feeder, series, events)
    print(f"\nnats restart: restart after {at_restart} insights; {line}")
    await feeder.close()


async def check_every_bar_and_signal_once(
    bus: Bus, series: dict[str, list[OHLCVBar]], events: Sequence[Event]
) -> str:
    """Every bar gave exactly one insight (the expected payloads) and every signal one decision, nothing
    was dead-lettered; returns the figures as one line."""
    insights = [json.loads(d) for _, d in await read_subject(bus.nc, "ANALYTICS", "analytics.v1.insight.>")]
    decisions = [json.loads(d) for _, d in await read_subject(bus.nc, "EXECUTION", "risk.v1.decision.>")]
    stream_total = (await bus.js.stream_info("ANALYTICS")).state.messages
    dead = await count_subject(bus.nc, "DLQ", "dlq.>")
    bar_ids = {str(b.event_id) for s in series.values() for b in s}
    signal_ids = {str(e.event_id) for e in events if not isinstance(e, OHLCVBar)}
    line = (
        f"{len(bar_ids)} bars + {len(signal_ids)} signals published; insights {len(insights)} "
        f"(unique {len({i['bar_event_id'] for i in insights})}, ANALYTICS stream {stream_total}); "
        f"decisions {len(decisions)} (unique {len({d['signal_id'] for d in decisions})}); dead letters {dead}"
    )
    assert stream_total == len(insights) == len(bar_ids), line
    assert {i["bar_event_id"] for i in insights} == bar_ids
    assert await stream_payloads(bus) == {s: expected_payloads(b) for s, b in series.items()}
    assert len(decisions) == len(signal_ids), line
    assert {d["signal_id"] for d in decisions} == signal_ids
    assert dead == 0, line
    return line
