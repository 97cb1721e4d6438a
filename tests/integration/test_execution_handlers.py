"""The service layer on a real DuckDB file with a fake publisher and verifier: a crash between commit and
publish re-publishes the same outputs and never makes new ones; a failed commit leaves no trace in memory."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from services.execution.adapters.auth_client import Verdict
from services.execution.adapters.store import ExecutionStore, OutboxRow
from services.execution.domain.config import CostModel, ExecutionConfig
from services.execution.handlers import ExecutionService
from shared.runtime.consumer import Delivery
from tests.unit.execution.helpers import NO_LIMITS, bar, command, signal


class FlakyPublisher:
    def __init__(self) -> None:
        self.sent: list[str] = []
        self.fail = False

    async def __call__(self, rows: Sequence[OutboxRow]) -> None:
        if self.fail:
            raise ConnectionError("nats down")
        self.sent += [r.event_id for r in rows]


class Admin:
    async def verify_admin(self, token: str) -> Verdict:
        return Verdict("admin1", "accepted") if token == "t" else Verdict(None, "denied: invalid session")


def deliveries(*events: Any) -> list[Delivery]:
    return [Delivery(e, "s", i, 1, None) for i, e in enumerate(events)]  # type: ignore[arg-type]


def service(path: Path, publisher: FlakyPublisher) -> ExecutionService:
    config = ExecutionConfig(limits=NO_LIMITS, costs=CostModel(slippage_bps=0, commission_pct=0, flat_fee=0))
    return ExecutionService(ExecutionStore.open(path), config, publisher, Admin())


async def test_a_crash_between_commit_and_publish_republishes_the_same_events(tmp_path: Path) -> None:
    pub = FlakyPublisher()
    svc = service(tmp_path / "e.duckdb", pub)
    b0, b1 = bar(0, 100.0), bar(1, 101.0)
    await svc.on_bars(deliveries(b0))
    pub.fail = True
    with pytest.raises(ConnectionError):
        await svc.on_signals(deliveries(signal(b0)))  # committed, not published, not acked
    svc.store.close()

    pub.fail = False
    svc = service(tmp_path / "e.duckdb", pub)  # restart
    await svc.flush()
    await svc.on_signals(deliveries(signal(b0)))  # the redelivery
    await svc.on_bars(deliveries(b1))
    assert len(pub.sent) == len(set(pub.sent))
    assert svc.counts == {"decisions": 0, "orders": 0, "trades": 1}  # the redelivery made nothing new
    assert svc.core.state.portfolio.quantity("INFY") == 1
    svc.store.close()


async def test_a_failed_commit_rolls_the_core_back_to_the_last_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = service(tmp_path / "e.duckdb", FlakyPublisher())
    b0 = bar(0, 100.0)
    await svc.on_bars(deliveries(b0))
    before = svc.core.state.model_dump_json()

    def broken(batch: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(svc.store, "commit", broken)
    with pytest.raises(OSError, match="disk full"):
        await svc.on_signals(deliveries(signal(b0)))
    assert svc.core.state.model_dump_json() == before
    svc.store.close()


async def test_commands_are_applied_only_with_an_admin_verdict(tmp_path: Path) -> None:
    svc = service(tmp_path / "e.duckdb", FlakyPublisher())
    forged = command("halt").model_copy(update={"session_token": "nope"})
    await svc.on_commands(deliveries(forged))
    assert svc.core.state.risk.state == "ACTIVE"
    assert svc.last_command is not None
    assert svc.last_command["outcome"].startswith("denied")
    await svc.on_commands(deliveries(command("halt")))
    assert svc.core.state.risk.state == "HALTED"
    assert [r.kind for r in svc.store.audit_rows()] == [
        "bastion.risk.command",
        "bastion.risk.command",
        "bastion.risk.state",
    ]
    svc.store.close()
