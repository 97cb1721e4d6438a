"""A 3-node NATS cluster with R3 streams: services given every node's URL and ``BASTION_STREAM_REPLICAS=3``
create replicated streams, and stopping the MARKETDATA stream leader mid-stream loses and doubles nothing
(counted by unique cause ids and by total messages in the streams)."""

from __future__ import annotations

import asyncio
import socket
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from bastion.natsd import free_port
from bastion.up import NATS_USERS
from shared.runtime.bus import Bus
from shared.runtime.settings import RuntimeSettings
from tests.integration.fault_support import count_subject, log_tail, spawn, terminate
from tests.integration.test_execution_support import write_config
from tests.integration.test_nats_restart import (
    BARS,
    CONSUMERS,
    SYMBOLS,
    check_every_bar_and_signal_once,
    consumer_state,
    feed,
)
from tests.integration.test_nats_restart import publish_through_outages as publish
from tests.support import cluster as support
from tests.support.cluster import NatsCluster
from tests.support.wait import eventually

pytestmark = pytest.mark.slow

NODE_CONF = Path(__file__).resolve().parents[2] / "deploy" / "nats" / "cluster" / "node.conf"
REPLICATED = ["MARKETDATA", "ANALYTICS", "SIGNALS", "EXECUTION", "AUDIT", "DLQ", "KV_SNAPSHOTS"]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    nodes = NatsCluster(tmp_path / "cluster").start()
    yield nodes
    nodes.stop()


@pytest.fixture
async def feeder(cluster: NatsCluster) -> AsyncIterator[Bus]:
    settings = RuntimeSettings(service="feeder", nats_url=cluster.url, stream_replicas=3)
    bus = await Bus.connect(settings, replicas=settings.stream_replicas)
    yield bus
    await bus.close()


async def replicas_of(bus: Bus, stream: str) -> tuple[int, str | None, list[str]]:
    """``(configured replicas, leader, other peers)`` of ``stream``."""
    info = await bus.js.stream_info(stream)
    cluster = info.cluster
    peers = [p.name for p in (cluster.replicas or []) if p.name] if cluster else []
    return info.config.num_replicas or 0, cluster.leader if cluster else None, peers


async def test_cluster_helper_starts_three_nodes_that_agree_on_a_meta_leader(cluster: NatsCluster) -> None:
    assert [n.name for n in cluster.nodes] == ["n1", "n2", "n3"]
    assert cluster.url.count(",") == 2
    assert cluster.meta_leader() in {"n1", "n2", "n3"}


def test_a_node_whose_port_was_taken_meanwhile_makes_the_cluster_start_again_on_fresh_ports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind((support.HOST, free_port(support.HOST)))
        held.listen()
        taken = held.getsockname()[1]
        handed = iter([taken])

        def taken_first(host: str = support.HOST) -> int:
            return next(handed, None) or free_port(host)

        monkeypatch.setattr(support, "free_port", taken_first)
        nodes = NatsCluster(tmp_path / "raced").start()
        try:
            assert taken not in [n.route_port for n in nodes.nodes]
            assert nodes.meta_leader() in {"n1", "n2", "n3"}
        finally:
            nodes.stop()


async def test_streams_and_snapshots_get_three_replicas_when_the_setting_says_so(
    cluster: NatsCluster, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("BASTION_NATS_URL", cluster.url)
    monkeypatch.setenv("BASTION_STREAM_REPLICAS", "3")
    monkeypatch.setenv("BASTION_HOME", str(tmp_path / "home"))
    settings = RuntimeSettings.from_env("analytics")
    bus = await Bus.connect(settings, replicas=settings.stream_replicas)
    try:
        await bus.ensure_streams(["MARKETDATA", "ANALYTICS"])
        await bus.snapshots()
        for stream in ("MARKETDATA", "ANALYTICS", "KV_SNAPSHOTS"):
            replicas, leader, peers = await replicas_of(bus, stream)
            assert replicas == 3, stream
            assert leader in {"n1", "n2", "n3"}, stream
            assert sorted([leader, *peers]) == ["n1", "n2", "n3"], stream
    finally:
        await bus.close()


async def test_the_production_node_config_forms_a_cluster_where_a_service_user_creates_r3_streams(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for user in NATS_USERS:
        monkeypatch.setenv(f"BASTION_{user.upper()}_PASSWORD", f"pw{user}0123456789")
    monkeypatch.setenv("BASTION_NATS_NODE", "from-the-flags")
    monkeypatch.setenv("BASTION_ROUTE_PASSWORD", "route0123456789")
    nodes = NatsCluster(tmp_path / "prod", config=NODE_CONF, route_auth="route:route0123456789")
    nodes.start()
    try:
        settings = RuntimeSettings(
            service="analytics",
            nats_url=nodes.url,
            nats_user="analytics",
            nats_password="pwanalytics0123456789",
            stream_replicas=3,
        )
        bus = await Bus.connect(settings, replicas=settings.stream_replicas)
        try:
            await bus.ensure_streams(["ANALYTICS"])
            await bus.snapshots()
            for stream in ("ANALYTICS", "KV_SNAPSHOTS"):
                replicas, leader, peers = await replicas_of(bus, stream)
                assert leader is not None, stream
                assert (replicas, sorted([leader, *peers])) == (3, ["n1", "n2", "n3"]), stream
        finally:
            await bus.close()
    finally:
        nodes.stop()


async def test_stopping_the_marketdata_leader_mid_stream_loses_and_doubles_nothing(
    cluster: NatsCluster, feeder: Bus, tmp_path: Path
) -> None:
    # the feeder creates only what it publishes to; the services create the rest from BASTION_STREAM_REPLICAS
    await feeder.ensure_streams(["MARKETDATA", "SIGNALS"])
    series, events = feed()
    third, total = len(events) // 3, BARS * len(SYMBOLS)
    await publish(feeder, events[:third])

    data = tmp_path / "data"
    env = {"BASTION_STREAM_REPLICAS": "3"}
    procs: dict[str, subprocess.Popen[bytes]] = {
        "analytics": spawn(
            "analytics",
            cluster.url,
            data,
            BASTION_ANALYTICS_BATCH="25",
            BASTION_ANALYTICS_ACK_WAIT="2",
            **env,
        ),
        "execution": spawn(
            "execution", cluster.url, data, BASTION_EXECUTION_CONFIG=str(write_config(tmp_path)), **env
        ),
    }

    def alive() -> None:
        for name, proc in procs.items():
            assert proc.poll() is None, f"{name} died:\n{log_tail(data, name)}"

    async def insights() -> int:
        alive()
        return await count_subject(feeder.nc, "ANALYTICS", "analytics.v1.insight.>")

    state: dict[str, object] = {}
    try:
        started: bool = await eventually(lambda: _at_least(insights, 100), timeout=60, what="100 insights")
        assert started
        _, stopped, _ = await replicas_of(feeder, "MARKETDATA")
        assert stopped is not None
        await asyncio.to_thread(cluster.stop_node, stopped)
        at_stop = await insights()
        await publish(feeder, events[third:])
        new_leader: str = await eventually(
            lambda: _leader_other_than(feeder, stopped), timeout=30, what="a new MARKETDATA leader"
        )

        async def settled() -> bool:
            alive()
            state["insights"] = await insights()
            state["decisions"] = await count_subject(feeder.nc, "EXECUTION", "risk.v1.decision.>")
            for name, stream in CONSUMERS.items():
                state[name] = await consumer_state(feeder, stream, name)
            return state["insights"] == state["decisions"] == total and all(
                state[n] == (0, 0) for n in CONSUMERS
            )

        try:
            caught_up: bool = await eventually(settled, timeout=60, what="every consumer caught up")
            assert caught_up
        except AssertionError as exc:
            raise AssertionError(f"{exc}; (pending, unacked), insights and decisions: {state}") from None
    finally:
        codes = {name: await terminate(proc, 10) for name, proc in procs.items()}
    assert codes == {"analytics": 0, "execution": 0}, {n: log_tail(data, n) for n in procs}

    for stream in REPLICATED:
        replicas, leader, _ = await replicas_of(feeder, stream)
        assert replicas == 3, stream
        assert leader != stopped, stream

    assert at_stop < total, "analytics finished before the node stopped: not mid-stream"
    line = await check_every_bar_and_signal_once(feeder, series, events)
    print(
        f"\nnats cluster (R3): stopped MARKETDATA leader {stopped} after {at_stop} insights, new leader "
        f"{new_leader}; {line}"
    )


async def _at_least(count: Callable[[], Awaitable[int]], n: int) -> bool:
    return await count() >= n


async def _leader_other_than(bus: Bus, stopped: str) -> str:
    """The MARKETDATA leader once it is not ``stopped``; "" while the stream has no leader to answer."""
    try:
        _, leader, _ = await replicas_of(bus, "MARKETDATA")
    except Exception:
        return ""
    return leader if leader and leader != stopped else ""
