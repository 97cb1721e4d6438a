"""``strategy-<worker>.duckdb``'s signal log: each signal is logged once, also when a batch repeats some
(a new owner republishing an outbox), and the fast plain INSERT never leaves a partial batch behind."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from nats.aio.client import Client as NATS

from services.strategy.adapters.nats_kv import STATE_BUCKET, KvStates, bucket
from services.strategy.adapters.store import SignalLog
from services.strategy.config import parse_config
from services.strategy.handlers import StrategyEngine
from shared.contracts.signals import SignalEvent
from tests.unit.strategy.helpers import bar

CONFIG = {
    "instances": [{"name": "sma_cross", "id": "sma", "params": {"fast": 2, "slow": 4, "allow_short": True}}]
}
CLOSES = [10, 10, 10, 10, 12, 14, 14, 10, 8, 8, 12, 14, 9, 7, 12, 15, 9, 6, 12, 16]


async def signals(nc: NATS) -> list[SignalEvent]:
    sent: list[SignalEvent] = []

    async def publish(batch: Sequence[SignalEvent]) -> None:
        sent.extend(batch)

    states = KvStates(await bucket(nc.jetstream(), STATE_BUCKET))
    engine = StrategyEngine(parse_config(CONFIG), states, publish)
    for i, close in enumerate(CLOSES):
        await engine.on_bars("INFY", [bar(i, float(close))])
    return sent


def logged(log: SignalLog) -> list[str]:
    return [str(r[0]) for r in log.conn.execute("SELECT event_id FROM signals ORDER BY bar_ts").fetchall()]


async def test_each_signal_is_logged_once_though_a_batch_repeats_some(nc: NATS, tmp_path: Path) -> None:
    sent = await signals(nc)
    assert len(sent) >= 4
    log = SignalLog.open(tmp_path / "s.duckdb")
    log.record(sent[:2])
    log.record(sent[1:4])  # one repeated, two new: the plain INSERT fails, the whole batch goes in again
    log.record(sent[:4])  # all repeated
    log.record(sent[4:])
    assert logged(log) == [str(s.event_id) for s in sent]
    assert [s.to_json() for s in log.signals()] == [s.to_json() for s in sorted(sent, key=_order)]
    log.close()
    again = SignalLog.open(tmp_path / "s.duckdb")
    assert [s.event_id for s in again.recent(2)] == [s.event_id for s in sent[-2:]]
    again.close()


def _order(s: SignalEvent) -> tuple[str, str, str]:
    return (s.symbol, s.bar_timestamp.isoformat(), s.strategy_id)
