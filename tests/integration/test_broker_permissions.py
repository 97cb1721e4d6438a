"""The real deploy/nats/nats.conf: each service user may publish only its own subjects."""

from __future__ import annotations

import nats
import nats.errors
import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from bastion.natsd import NatsServer
from shared.runtime.bus import Bus
from shared.runtime.consumer import attempts_key
from tests.support.secured import PASSWORDS
from tests.support.wait import eventually


async def connect_as(server: NatsServer, user: str, errors: list[str]) -> NATS:
    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    return await nats.connect(
        server.url, user=user, password=PASSWORDS[user], error_cb=on_error, allow_reconnect=False
    )


async def denied(server: NatsServer, user: str, subject: str) -> bool:
    errors: list[str] = []
    nc = await connect_as(server, user, errors)
    try:
        await nc.publish(subject, b"{}")
        await nc.flush()
        await eventually(lambda: errors, timeout=3, what=f"a permissions error for {user} on {subject}")
        return any("permissions violation" in e.lower() for e in errors)
    finally:
        await nc.close()


@pytest.mark.parametrize("subject", ["exec.v1.order.INFY", "exec.v1.trade.INFY", "md.v1.bar.INFY"])
async def test_strategy_worker_cannot_publish_orders_trades_or_bars(
    secured_server: NatsServer, subject: str
) -> None:
    assert await denied(secured_server, "strategy", subject)


@pytest.mark.parametrize(
    "subject",
    [
        "md.v1.bar.INFY",
        "analytics.v1.insight.INFY",
        "strategy.v1.signal.INFY",
        "exec.v1.order.INFY",
        "risk.v1.command",
        "audit.v1.auth",
        "$KV.SNAPSHOTS.risk",
        "ctl.v1.analytics.recompute",
        "ctl.v1.auth.users",
    ],
)
async def test_dashboard_cannot_publish_any_event_subject(secured_server: NatsServer, subject: str) -> None:
    assert await denied(secured_server, "dashboard", subject)


async def test_only_execution_publishes_orders(secured_server: NatsServer) -> None:
    for user in ("marketdata", "analytics", "strategy", "auth", "dashboard"):
        assert await denied(secured_server, user, "exec.v1.order.INFY"), user
    errors: list[str] = []
    nc = await connect_as(secured_server, "execution", errors)
    await nc.publish("exec.v1.order.INFY", b"{}")
    await nc.flush()
    await nc.close()
    assert errors == []


async def test_strategy_can_publish_its_signals_to_jetstream(secured_server: NatsServer) -> None:
    errors: list[str] = []
    nc = await connect_as(secured_server, "strategy", errors)
    js = nc.jetstream()
    await js.add_stream(name="SIGNALS", subjects=["strategy.>"])
    ack = await js.publish("strategy.v1.signal.INFY", b"{}")
    assert ack.seq == 1
    await nc.close()


async def test_anonymous_and_wrong_password_connections_are_refused(secured_server: NatsServer) -> None:
    for options in ({}, {"user": "execution", "password": "wrong"}):
        errors: list[str] = []

        async def on_error(exc: Exception, errors: list[str] = errors) -> None:
            errors.append(str(exc))

        with pytest.raises(Exception):
            await nats.connect(
                secured_server.url, allow_reconnect=False, connect_timeout=2, error_cb=on_error, **options
            )
        assert any("authorization" in e.lower() for e in errors), errors


#: the SNAPSHOTS keys each service writes (its own prefix and its heartbeat), as the services name them
OWN_SNAPSHOTS = {
    "marketdata": ["marketdata.symbols", "health.marketdata"],
    "analytics": ["analytics.INFY", "health.analytics"],
    "strategy": ["strategy.workers", "strategy.signals.w1", "health.strategy.w1"],
    "execution": ["execution.risk", "execution.positions", "execution.orders.recent", "health.execution"],
    "auth": ["health.auth"],
}


@pytest.mark.parametrize(
    ("user", "key"),
    [
        (user, key)
        for user in OWN_SNAPSHOTS
        for owner, keys in OWN_SNAPSHOTS.items()
        if owner != user
        for key in keys[:1] + keys[-1:]
    ],
)
async def test_a_service_cannot_overwrite_another_services_snapshot(
    secured_server: NatsServer, user: str, key: str
) -> None:
    assert await denied(secured_server, user, f"$KV.SNAPSHOTS.{key}")


async def test_every_service_writes_its_own_snapshots_and_heartbeat(secured_server: NatsServer) -> None:
    admin = await nats.connect(secured_server.url, user="operator", password=PASSWORDS["operator"])
    try:
        await admin.jetstream().create_key_value(bucket="SNAPSHOTS", history=1)
    finally:
        await admin.close()
    for user, keys in OWN_SNAPSHOTS.items():
        errors: list[str] = []
        nc = await connect_as(secured_server, user, errors)
        try:
            kv = await nc.jetstream().key_value("SNAPSHOTS")
            for key in keys:
                assert await kv.put(key, b"{}") > 0, (user, key)
        finally:
            await nc.close()
        assert errors == [], (user, errors)


async def test_the_analytics_cli_user_asks_the_running_analytics_service_to_recompute(
    secured_server: NatsServer,
) -> None:
    errors: list[str] = []
    service = await connect_as(secured_server, "analytics", errors)
    cli = await connect_as(secured_server, "analytics", errors)
    try:

        async def answer(msg: Msg) -> None:
            await msg.respond(b'{"ok": true}')

        await service.subscribe("ctl.v1.analytics.recompute", queue="analytics", cb=answer)
        await service.flush()

        async def ask() -> Msg | None:
            try:
                return await cli.request("ctl.v1.analytics.recompute", b"{}", timeout=5)
            except nats.errors.NoRespondersError:  # once seen under a loaded full suite: ask again
                return None

        reply = await eventually(ask, timeout=10, what="an answer from the analytics service")
    finally:
        await cli.close()
        await service.close()
    assert reply.data == b'{"ok": true}'
    assert errors == []
    for user in ("strategy", "execution", "marketdata", "auth"):
        assert await denied(secured_server, user, "ctl.v1.analytics.recompute"), user


@pytest.mark.parametrize("user", ["marketdata", "analytics", "strategy", "execution", "auth", "dashboard"])
async def test_only_the_operator_may_ask_the_auth_service_to_change_users(
    secured_server: NatsServer, user: str
) -> None:
    assert await denied(secured_server, user, "ctl.v1.auth.users")


@pytest.mark.parametrize("user", ["marketdata", "analytics", "strategy", "execution", "auth"])
@pytest.mark.parametrize("action", ["UPDATE", "DELETE", "PURGE"])
async def test_no_service_can_change_delete_or_purge_a_stream(
    secured_server: NatsServer, user: str, action: str
) -> None:
    """Ages and subjects are the operator's (``bastion streams apply``): no service can lose the record."""
    assert await denied(secured_server, user, f"$JS.API.STREAM.{action}.EXECUTION")


async def test_each_service_keeps_its_own_consumer_attempts_and_no_other_services(
    secured_server: NatsServer,
) -> None:
    """The one-by-one recovery of ``shared.runtime.consumer`` under the real permissions: each service user
    creates or opens CONSUMER_ATTEMPTS and writes and deletes its own keys (a symbol's ``&`` encoded)."""
    for user in OWN_SNAPSHOTS:
        errors: list[str] = []
        nc = await connect_as(secured_server, user, errors)
        try:
            kv = await Bus(nc, user).attempts()
            key = attempts_key(user, f"{user}-bars-M&M")
            assert await kv.put(key, b'{"seq": 1, "started": 1}') > 0
            await kv.delete(key)
            await nc.flush()
        finally:
            await nc.close()
        assert errors == [], (user, errors)
    assert await denied(secured_server, "strategy", "$KV.CONSUMER_ATTEMPTS.execution.execution-signals")
