"""Stream retention on a real nats-server: services create streams with the ages of BASTION_STREAM_MAX_AGE,
warn about an existing stream that keeps another age, and ``bastion streams apply`` (the operator) fixes it
without losing a message."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nats
import pytest
import structlog
from nats.js.api import StorageType, StreamConfig, StreamInfo, StreamState

from bastion.natsd import NatsServer
from bastion.streams import StreamView
from shared.runtime.bus import Bus
from shared.runtime.retention import DAY
from shared.runtime.service import ServiceParts, ServiceRunner
from shared.runtime.settings import RuntimeSettings
from tests.support.secured import PASSWORDS, operator_home
from tests.support.wait import eventually


@pytest.fixture
def logs(capsys: pytest.CaptureFixture[str]) -> Iterator[pytest.CaptureFixture[str]]:
    """capsys for a service run in this process; its structlog config (bound to capsys's stderr, closed after
    the test) is put back as it was, so later tests still log."""
    saved = structlog.get_config()
    yield capsys
    structlog.configure(**saved)


async def test_a_service_creates_streams_with_the_configured_ages_and_warns_about_an_old_one(
    nats_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, logs: pytest.CaptureFixture[str]
) -> None:
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    # an AUDIT stream of an older deployment: no age limit
    await js.add_stream(StreamConfig(name="AUDIT", subjects=["audit.>"], storage=StorageType.FILE))
    for name in ("BASTION_NATS_USER", "BASTION_NATS_PASSWORD", "BASTION_NATS_PASSWORD_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BASTION_HOME", str(tmp_path))
    monkeypatch.setenv("BASTION_NATS_URL", nats_url)
    monkeypatch.setenv("BASTION_STREAM_MAX_AGE", "MARKETDATA=90d,AUDIT=365d")
    settings = RuntimeSettings.from_env("svc")

    async def setup(bus: Bus) -> ServiceParts:
        return ServiceParts()

    streams = ["MARKETDATA", "ANALYTICS", "EXECUTION", "AUDIT"]
    runner = ServiceRunner(settings, setup, streams=streams, heartbeat_interval=0.1)
    task = asyncio.create_task(runner.run())
    kv = await eventually(lambda: _kv(js), what="the SNAPSHOTS bucket")
    await eventually(lambda: _entry(kv, "health.svc"), what="the service's first heartbeat")
    runner.stop.set()
    assert await asyncio.wait_for(task, 10) == 0

    infos = {name: (await js.stream_info(name)).config for name in streams}
    assert {name: cfg.max_age for name, cfg in infos.items()} == {
        "MARKETDATA": 90 * DAY,
        "ANALYTICS": 30 * DAY,
        "EXECUTION": 0.0,
        "AUDIT": 0.0,  # left as it was: a service may not change a stream
    }
    assert {infos[name].duplicate_window for name in streams[:3]} == {3600.0}
    warnings = [json.loads(line) for line in logs.readouterr().err.splitlines() if "max_age_differs" in line]
    assert [(w["stream"], w["keeps"], w["configured"], w["fix"]) for w in warnings] == [
        ("AUDIT", "forever", "365d", "bastion streams apply")
    ]
    await nc.close()


async def _kv(js: nats.js.JetStreamContext) -> nats.js.kv.KeyValue | None:
    try:
        return await js.key_value("SNAPSHOTS")
    except nats.js.errors.NotFoundError:
        return None


async def _entry(kv: nats.js.kv.KeyValue, key: str) -> bool:
    try:
        await kv.get(key)
    except nats.js.errors.KeyNotFoundError:
        return False
    return True


def bastion(home: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The ``bastion`` command beside a `bastion up` home: its nats-url and operator password files."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    return subprocess.run(
        [sys.executable, "-m", "bastion", *args],
        env={**clean, "BASTION_HOME": str(home), "COLUMNS": "200", **(env or {})},
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )


async def test_streams_apply_gives_existing_streams_the_configured_ages_and_keeps_their_messages(
    secured_server: NatsServer, tmp_path: Path
) -> None:
    home = operator_home(secured_server, tmp_path / "home")
    nc = await nats.connect(secured_server.url, user="operator", password=PASSWORDS["operator"])
    js = nc.jetstream()

    def old(name: str, subjects: list[str], max_age: float = 0.0) -> StreamConfig:  # an older deployment's
        return StreamConfig(
            name, subjects=subjects, storage=StorageType.FILE, duplicate_window=3600.0, max_age=max_age
        )

    await js.add_stream(old("MARKETDATA", ["md.>"]))  # no age: grows for ever
    await js.add_stream(old("SIGNALS", ["strategy.>"], max_age=7 * DAY))
    await js.add_stream(old("EXECUTION", ["exec.>", "risk.>"]))
    for i in range(3):
        await js.publish("md.v1.bar.INFY", f"bar {i}".encode(), headers={"Nats-Msg-Id": f"b{i}"})

    async def ages() -> dict[str, float]:
        return {
            n: (await js.stream_info(n)).config.max_age or 0.0 for n in ("MARKETDATA", "SIGNALS", "EXECUTION")
        }

    behind = await js.pull_subscribe("md.v1.bar.INFY", durable="behind", stream="MARKETDATA")
    for msg in await behind.fetch(1, timeout=5):
        await msg.ack_sync()  # read one of three: two unread, from the second on
    later = await js.pull_subscribe("md.>", durable="later", stream="MARKETDATA")
    for msg in await later.fetch(2, timeout=5):
        await msg.ack_sync()  # one unread, newer than the other's: the oldest stays the second message
    caught_up = await js.pull_subscribe("md.>", durable="caught-up", stream="MARKETDATA")
    for msg in await caught_up.fetch(3, timeout=5):
        await msg.ack_sync()
    second = (await js.get_msg("MARKETDATA", 2)).time
    assert second is not None

    before = await ages()
    listed = bastion(home, "streams", "list")
    assert listed.returncode == 0, listed.stderr
    rows = {
        cells[0]: cells[1:]
        for line in listed.stdout.splitlines()
        if len(cells := [c.strip() for c in line.split("│")[1:-1]]) == 8
    }
    assert rows["MARKETDATA"][0] == "3"
    assert rows["MARKETDATA"][3:] == ["forever", "30d (differs)", "3", second.strftime("%Y-%m-%d %H:%M")]
    assert rows["SIGNALS"][3:] == ["7d", "30d (differs)", "0", "-"]
    assert rows["EXECUTION"][3:5] == ["forever", "forever"]
    assert rows["AUDIT"] == ["-", "-", "-", "not created", "forever", "-", "-"]
    assert "at risk" not in listed.stdout
    assert "bastion streams apply" in listed.stdout

    dry = bastion(home, "streams", "apply", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "MARKETDATA: forever -> 30d" in dry.stdout
    assert "SIGNALS: 7d -> 30d" in dry.stdout
    assert "EXECUTION: keeps forever, as configured" in dry.stdout
    assert await ages() == before

    unasked = bastion(home, "streams", "apply")  # shortens MARKETDATA's age, and nobody can be asked
    assert unasked.returncode == 2
    assert "pass --yes" in unasked.stderr
    assert "Traceback" not in unasked.stderr
    assert await ages() == before

    done = bastion(home, "streams", "apply", "--yes", env={"BASTION_STREAM_MAX_AGE": "EXECUTION=3650d"})
    assert done.returncode == 0, done.stderr
    assert await ages() == {"MARKETDATA": 30 * DAY, "SIGNALS": 30 * DAY, "EXECUTION": 3650 * DAY}
    info = await js.stream_info("MARKETDATA")
    assert info.state.messages == 3
    assert (info.config.subjects, info.config.duplicate_window, info.config.num_replicas) == (
        ["md.>"],
        3600.0,
        1,
    )
    again = bastion(home, "streams", "apply", env={"BASTION_STREAM_MAX_AGE": "EXECUTION=3650d"})
    assert again.returncode == 0
    assert "nothing to change" in again.stdout

    # as a service's user (say, inside its container): refused by the server, and said so
    service = {"BASTION_NATS_USER": "execution", "BASTION_NATS_PASSWORD": PASSWORDS["execution"]}
    refused = bastion(
        home, "streams", "apply", "--yes", env={**service, "BASTION_STREAM_MAX_AGE": "EXECUTION=7d"}
    )
    assert refused.returncode == 2
    assert "NATS user execution may not change streams: run it as the operator user" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert (await ages())["EXECUTION"] == 3650 * DAY
    await nc.close()


def test_a_bad_age_stops_the_command_with_one_line(tmp_path: Path) -> None:
    result = bastion(tmp_path, "streams", "list", env={"BASTION_STREAM_MAX_AGE": "MARKETDATA=a month"})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: BASTION_STREAM_MAX_AGE MARKETDATA: age 'a month' is not a number of days (30d), hours (12h) "
        "or 'forever'"
    ]


@pytest.mark.parametrize("command", [("streams", "list"), ("risk", "status")])
def test_an_operator_command_says_in_one_line_when_nats_cannot_be_reached(
    tmp_path: Path, command: tuple[str, str]
) -> None:
    cluster = "nats://127.0.0.1:1,nats://127.0.0.1:2"  # BASTION_NATS_URL of a cluster: every node is tried
    result = bastion(tmp_path, *command, env={"BASTION_NATS_URL": cluster})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: cannot reach NATS at {cluster}: nats: no servers available for connection"
        " (is `bastion up` running? see BASTION_NATS_URL)"
    ]


def test_a_stream_is_at_risk_when_a_consumer_is_behind_by_more_than_half_its_age() -> None:
    now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    state = StreamState(messages=10, bytes=1000, first_seq=1, last_seq=10, consumer_count=1)

    def view(max_age: float, behind: timedelta | None) -> StreamView:
        info = StreamInfo(config=StreamConfig(name="MARKETDATA", max_age=max_age), state=state)
        return StreamView("MARKETDATA", info, None, 30 * DAY, 5, now - behind if behind else None)

    assert view(30 * DAY, timedelta(days=16)).at_risk(now)
    assert not view(30 * DAY, timedelta(days=14)).at_risk(now)
    assert not view(0.0, timedelta(days=400)).at_risk(now)  # kept forever: nothing is removed
    assert not view(30 * DAY, None).at_risk(now)  # nothing unread
