"""Backtest/paper parity: the same bars replayed through the running services (marketdata replay,
analytics, a strategy worker, execution in paper mode) give exactly the orders and trades of `bastion
backtest` (same ids, quantities, prices and commissions) for each of the four strategies on each of four
symbols. The four strategies trade every symbol at once, each in its own book, so with fixed-quantity sizing
and no risk limits each (strategy, symbol) equals a single-strategy backtest, however the strategies'
signals interleave on the way to execution."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from nats.aio.client import Client as NATS

from bastion.backtest.engine import NO_LIMITS, Backtest, execution_config, load_bars, parse_sizing
from services.execution.adapters.config_file import load_config
from services.marketdata.domain.synthetic import generate
from tests.integration.test_execution_support import read_subject
from tests.support.wait import eventually

ROOT = Path(__file__).resolve().parents[2]
STRATEGIES = {
    "SMAX": "sma_cross",
    "EHMAX": "ehma_pivot",
    "CONFX": "confluence_consumer",
    "REGX": "regime_adaptive",
}
BARS = 400


def _files(tmp_path: Path) -> dict[str, Path]:
    files = {}
    for index, symbol in enumerate(STRATEGIES):
        frame = generate(symbol, BARS, 11 + index, interval_seconds=86_400).drop(columns=["regime"])
        path = tmp_path / f"{symbol.lower()}.csv"
        frame.to_csv(path, index=False)
        files[symbol] = path
    return files


def _configs(tmp_path: Path) -> tuple[Path, Path]:
    strategies = {
        "instances": [
            {"name": name, "id": name, "params": {}, "symbols": list(STRATEGIES)}
            for name in STRATEGIES.values()
        ]
    }
    execution = {
        "execution": {
            "mode": "paper",
            "initial_cash": 100000,
            # default bars_kept (64): the bars are replayed at full speed, far ahead of the signals, and a
            # signal whose bar left the kept window is decided on the service's bar history
            "limits": NO_LIMITS.model_dump(mode="json"),
            "sizing": {"policy": "fixed_qty", "quantity": 10},
            "costs": {"slippage_bps": 5, "commission_pct": 0.1, "commission_cap": None, "flat_fee": 0},
        }
    }
    s_path, e_path = tmp_path / "strategies.yaml", tmp_path / "execution.yaml"
    s_path.write_text(yaml.safe_dump(strategies))
    e_path.write_text(yaml.safe_dump(execution))
    return s_path, e_path


def _backtest(
    name: str, symbol: str, path: Path, execution_file: Path
) -> tuple[set[str], set[str], list[Any], set[str]]:
    config = execution_config(
        Decimal(100000),
        Decimal("0.001"),
        Decimal(5),
        parse_sizing("qty:10", False),
        load_config(execution_file),
    )
    result = Backtest.create(name, name, {}, config).run(load_bars([path], [symbol], "1d", None, None))
    fills = sorted(
        (str(f.trade_id), str(f.order_id), f.quantity, f.price, f.commission) for f in result.fills
    )
    signals = {str(s.event_id) for s in result.signals}
    return {str(o.event_id) for o in result.orders}, {str(f.event_id) for f in result.fills}, fills, signals


def _env(nats_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    return env | {
        "BASTION_NATS_URL": nats_url,
        "BASTION_DATA_DIR": str(data_dir),
        "BASTION_HOME": str(data_dir.parent / "home"),
        "BASTION_LOG_LEVEL": "warning",
        **extra,
    }


async def test_services_in_paper_mode_trade_exactly_like_the_backtest(
    nats_url: str, nc: NATS, tmp_path: Path
) -> None:
    files = _files(tmp_path)
    strategies_file, execution_file = _configs(tmp_path)
    alone = {
        (name, symbol): _backtest(name, symbol, path, execution_file)
        for symbol, path in files.items()
        for name in STRATEGIES.values()
    }
    for name in STRATEGIES.values():
        assert all(alone[name, s][0] and alone[name, s][1] for s in files), (
            f"{name} placed no order on a symbol: the comparison would prove less"
        )
    expected: dict[str, tuple[set[str], set[str], list[Any], set[str]]] = {}
    for symbol in files:  # what the services publish per symbol: every strategy's backtest of it
        runs = [alone[name, symbol] for name in STRATEGIES.values()]
        expected[symbol] = (
            set().union(*(r[0] for r in runs)),
            set().union(*(r[1] for r in runs)),
            sorted(fill for r in runs for fill in r[2]),
            set().union(*(r[3] for r in runs)),
        )

    data = tmp_path / "data"
    services = {
        "analytics": {},
        "strategy": {"BASTION_STRATEGY_CONFIG": str(strategies_file), "BASTION_STRATEGY_WORKER": "1"},
        "execution": {"BASTION_EXECUTION_CONFIG": str(execution_file)},
    }
    procs = [
        subprocess.Popen(  # noqa: ASYNC220 - starting the services, not waiting on them
            [sys.executable, "-m", f"services.{name}"],
            cwd=ROOT,
            env=_env(nats_url, data, **extra),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for name, extra in services.items()
    ]
    try:
        for symbol, path in files.items():
            replay = subprocess.run(
                [sys.executable, "-m", "bastion", "feed", "replay", "--input", str(path), "--symbol", symbol,
                 "--interval", "1d"],
                cwd=ROOT, env=_env(nats_url, data), capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip
            assert replay.returncode == 0, replay.stderr

        async def service_ids() -> dict[str, tuple[set[str], set[str]]]:
            for proc in procs:
                assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else proc.returncode
            orders = await read_subject(nc, "EXECUTION", "exec.v1.order.>")
            trades = await read_subject(nc, "EXECUTION", "exec.v1.trade.>")
            return {
                s: (
                    {o["event_id"] for o in orders if o["symbol"] == s},
                    {t["event_id"] for t in trades if t["symbol"] == s},
                )
                for s in STRATEGIES
            }

        want = {s: (orders, trades) for s, (orders, trades, _, _) in expected.items()}

        seen: dict[str, Any] = {}

        async def same() -> bool:
            got = await service_ids()
            signals = await read_subject(nc, "SIGNALS", "strategy.v1.signal.>")
            for s in STRATEGIES:
                seen[s] = {
                    "signals (service, backtest)": (
                        len([x for x in signals if x["symbol"] == s]),
                        len(expected[s][3]),
                    ),
                    "orders missing/extra": (len(want[s][0] - got[s][0]), len(got[s][0] - want[s][0])),
                    "trades missing/extra": (len(want[s][1] - got[s][1]), len(got[s][1] - want[s][1])),
                }
            return got == want

        try:
            await eventually(
                same, timeout=90, interval=1, what="the services' orders and trades to equal the backtest's"
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{seen}") from None
        stored_trades = await read_subject(nc, "EXECUTION", "exec.v1.trade.>")
        for symbol, (_, _, fills, _) in expected.items():
            got = sorted(
                (
                    t["trade_id"],
                    t["order_id"],
                    Decimal(t["quantity"]),
                    Decimal(t["price"]),
                    Decimal(t["commission"]),
                )
                for t in stored_trades
                if t["symbol"] == symbol
            )
            assert got == fills, symbol
        counts = {
            name: (sum(len(alone[name, s][0]) for s in files), sum(len(alone[name, s][1]) for s in files))
            for name in STRATEGIES.values()
        }
        print(f"parity (orders, trades) per strategy over {len(files)} symbols: {counts}")
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(20)
