"""Outputs pinned byte for byte: a 5,000-bar sma_cross backtest and the core fed bars out of order, with
repeats and late signals. The digests were taken before the core's fast paths were added; a change to any
id, quantity, price, equity point or persisted state changes them. (``CORE_DIGEST`` was taken again when the
equity curve stopped going back in time: the events and the rest of the state were checked to be unchanged,
only the curve's out-of-order points merged into the newest one. It was pinned anew when each strategy got
its own book: the signals now come from five strategies, not one each, so that books, repeats and
reversed working orders all occur. And once more when a bar older than its symbol's newest stopped
marking the position: the 490 events were checked to be unchanged, only the marks, the equity curve and the
peak, which now follow each symbol's newest close.)"""

from __future__ import annotations

import hashlib
import json
import random
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

from bastion.backtest.engine import Backtest, execution_config, load_bars, parse_sizing
from services.execution.domain.config import CostModel
from shared.contracts.envelope import Event
from shared.contracts.orders import TradeEvent
from shared.contracts.signals import Target
from tests.unit.execution.helpers import T0, bar, core, signal

BACKTEST_DIGEST = "54647f5726b66ab969d3bde025189820df2e0280baf577527efafd6472992ade"
TARGETS: tuple[Target, ...] = ("long", "flat", "short")
# the equity curve backdates late fills (test_late_fills.py); events and the rest of the state as before
CORE_DIGEST = "b216fb32f802276efbee4df187c9398344418b7ef752f97e1b932c45bec40ec8"


def digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def write_walk(path: Path, n: int) -> Path:
    rng, price = random.Random(5), 100.0
    rows = ["timestamp,open,high,low,close,volume"]
    for i in range(n):
        opened = round(price * (1 + rng.uniform(-0.002, 0.002)), 2)
        price = max(1.0, round(price * (1 + rng.uniform(-0.01, 0.01)), 2))
        stamp = (T0 + timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%SZ")
        high, low = max(opened, price) + 0.05, min(opened, price) - 0.05
        rows.append(f"{stamp},{opened},{high:.2f},{low:.2f},{price},1000")
    path.write_text("\n".join(rows) + "\n")
    return path


def test_a_5000_bar_backtest_gives_the_pinned_json(tmp_path: Path) -> None:
    bars = load_bars([write_walk(tmp_path / "walk.csv", 5000)], ["WALK"], "1m", None, None)
    sizing = parse_sizing("all", False)
    config = execution_config(Decimal(100_000), Decimal("0.001"), Decimal(5), sizing, None)
    result = Backtest.create("sma_cross", "sma_cross", {"fast": 5, "slow": 20}, config).run(bars, True)
    out: dict[str, Any] = {
        kind: [e.model_dump(mode="json") for e in events]
        for kind, events in (
            ("signals", result.signals),
            ("decisions", result.decisions),
            ("orders", result.orders),
            ("fills", result.fills),
        )
    }
    stamps = pd.DatetimeIndex(result.equity.index).to_pydatetime()
    out["equity"] = [[t.isoformat(), repr(v)] for t, v in zip(stamps, result.equity, strict=True)]
    out["exposed"] = result.exposed
    out["open"] = {s: str(q) for s, q in result.final_positions.items()}
    assert len(out["fills"]) > 100
    assert digest(out) == BACKTEST_DIGEST


def test_the_core_fed_bars_out_of_order_gives_the_pinned_events_and_state() -> None:
    rng = random.Random(11)
    costs = CostModel(slippage_bps=Decimal(2), commission_pct=Decimal("0.05"), flat_fee=Decimal(0))
    c = core(qty=3, costs=costs, allow_short=True)
    minutes = list(range(200))
    for start in range(0, 200, 8):
        chunk = minutes[start : start + 8]
        rng.shuffle(chunk)
        minutes[start : start + 8] = chunk
    minutes += [5, 120, 199, 60, 260, 210, 205] + [rng.randrange(0, 280) for _ in range(40)]
    events: list[Event] = []
    for n, i in enumerate(minutes):
        for symbol in ("INFY", "TCS"):
            # a live source: late signals are judged stale (replayed bars are not, see risk.check_stale)
            b = bar(i, 100 + i % 13 - i % 4, symbol=symbol, open_=100 + i % 11 - i % 3, source="broker:kite")
            target = rng.choice(TARGETS)
            if rng.random() < 0.25:
                events += c.on_signal(signal(b, target, strategy_id=f"a{n % 3}"))
            events += c.on_bar(b)
            if rng.random() < 0.15:
                events += c.on_signal(signal(b, target, strategy_id=f"b{n % 2}"))
    assert sum(isinstance(e, TradeEvent) for e in events) > 50
    books = c.state.books  # the portfolio's positions are the sum of the strategies' books
    for symbol, position in c.state.portfolio.positions.items():
        assert position.quantity == sum(q for k, q in books.items() if k.endswith(f"|{symbol}"))
    data = {
        "events": [e.model_dump(mode="json") for e in events],
        "state": json.loads(c.state.model_dump_json()),
    }
    assert digest(data) == CORE_DIGEST
