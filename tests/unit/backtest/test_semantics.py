"""The backtest's documented semantics on crafted bars: signal on a bar's close, fill at the next bar's open,
commission as a fraction of each fill's notional, whole units, open positions and --close-at-end."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from bastion.backtest.engine import Backtest, BacktestError, execution_config, load_bars, parse_sizing
from bastion.backtest.stats import compute, lowest_cash
from bastion.backtest.trips import round_trips

# sma_cross fast=2 slow=3: the fast SMA crosses above on bar 4 (close 12), below on bar 7 (close 8).
CLOSES = [10, 10, 10, 9, 12, 13, 14, 8, 7, 7]
OPENS = [10, 10, 10, 10, 9, 12.5, 13.25, 14, 8.5, 7]
PARAMS = {"fast": 2, "slow": 3}


def write_csv(path: Path, n: int = len(CLOSES)) -> Path:
    rows = ["Date,Open,High,Low,Close,Volume"]
    for i in range(n):
        o, c = OPENS[i], CLOSES[i]
        rows.append(f"2024-01-{i + 1:02d},{o},{max(o, c) + 1},{min(o, c) - 1},{c},1000")
    path.write_text("\n".join(rows) + "\n")
    return path


def run(
    tmp_path: Path, sizing: str = "qty:10", commission: str = "0", n: int = len(CLOSES), close: bool = False
):
    bars = load_bars([write_csv(tmp_path / "infy.csv", n)], ["INFY"], "1d", None, None)
    config = execution_config(
        Decimal(100_000), Decimal(commission), Decimal(0), parse_sizing(sizing, False), None
    )
    return Backtest.create("sma_cross", "sma_cross", PARAMS, config).run(bars, close_at_end=close)


def test_a_crossover_on_bar_t_fills_at_the_open_of_bar_t_plus_1(tmp_path: Path) -> None:
    result = run(tmp_path)
    assert [s.target for s in result.signals] == ["long", "flat"]
    assert [s.bar_timestamp.day for s in result.signals] == [5, 8]  # bars 4 and 7 (1-based days 5 and 8)
    buy, sell = result.fills
    assert (buy.side, buy.quantity, buy.price, buy.filled_at.day) == ("buy", Decimal(10), Decimal("12.5"), 6)
    assert (sell.side, sell.quantity, sell.price, sell.filled_at.day) == (
        "sell",
        Decimal(10),
        Decimal("8.5"),
        9,
    )
    assert result.equity.iloc[-1] == pytest.approx(100_000 + 10 * (8.5 - 12.5))


def test_commission_is_a_fraction_of_each_fills_notional(tmp_path: Path) -> None:
    result = run(tmp_path, commission="0.001")
    # 0.1% of 125 and of 85, rounded half-up to the paisa
    assert [f.commission for f in result.fills] == [Decimal("0.13"), Decimal("0.09")]
    pnl = 10 * (8.5 - 12.5) - 0.13 - 0.09
    assert result.equity.iloc[-1] == pytest.approx(100_000 + pnl)


def test_notional_sizing_buys_whole_units_only(tmp_path: Path) -> None:
    result = run(tmp_path, sizing="notional:1000")
    # sized at the signal bar's close (12): 1000 / 12 = 83.3 -> 83 whole units
    assert result.fills[0].quantity == Decimal(83)


def test_an_open_position_is_reported_and_closed_only_with_close_at_end(tmp_path: Path) -> None:
    still_open = run(tmp_path, n=7)
    assert still_open.final_positions == {"INFY": Decimal(10)}
    assert len(still_open.fills) == 1
    closed = run(tmp_path, n=7, close=True)
    assert closed.final_positions == {}
    last = closed.fills[-1]
    assert (last.side, last.price, last.filled_at.day) == ("sell", Decimal(14), 7)  # the last close
    assert closed.equity.iloc[-1] == pytest.approx(100_000 + 10 * (14 - 12.5))


def test_bad_sizing_and_ranges_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(BacktestError, match="expected all, qty:N"):
        parse_sizing("lots:3", False)
    with pytest.raises(BacktestError, match="no bars"):
        load_bars([write_csv(tmp_path / "x.csv")], ["INFY"], "1d", None, None)[:0] or load_bars(
            [write_csv(tmp_path / "y.csv")], ["INFY"], "1d", pd_ts("2030-01-01"), None
        )


def pd_ts(text: str):
    from datetime import UTC, datetime

    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_cli_writes_json_and_report_and_rejects_bad_input_without_traceback(tmp_path: Path) -> None:
    csv = write_csv(tmp_path / "infy.csv")
    out, html = tmp_path / "out.json", tmp_path / "report.html"
    args = [
        sys.executable,
        "-m",
        "bastion",
        "backtest",
        "--strategy",
        "sma_cross",
        "--set",
        "fast=2",
        "--set",
        "slow=3",
        "--input",
        str(csv),
        "--symbol",
        "INFY",
        "--sizing",
        "qty:10",
        "--json",
        str(out),
        "--report",
        str(html),
    ]
    done = subprocess.run(args, capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    data = json.loads(out.read_text())
    assert data["stats"]["trades"] == 1
    assert Decimal(data["trades"][0]["pnl"]) == -40
    assert len(data["equity_curve"]) == len(CLOSES)
    page = html.read_text()
    assert "<svg" in page
    assert "<script" not in page
    assert "INFY" in page
    bad = subprocess.run(
        [*args[:4], "--strategy", "nope", "--input", str(csv)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert bad.returncode == 2
    assert "unknown strategy" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_sizing_all_invests_the_cash_in_whole_units_net_of_commission(tmp_path: Path) -> None:
    result = run(tmp_path, sizing="all", commission="0.01")
    # signal close 12, 1% commission: 100000 / (12 * 1.01) = 8250.8 -> 8250 units
    buy = result.fills[0]
    assert buy.quantity == Decimal(8250)
    assert (
        buy.quantity * Decimal(12) * Decimal("1.01")
        <= 100_000
        < (buy.quantity + 1) * Decimal(12) * Decimal("1.01")
    )


def test_sizing_all_in_a_portfolio_invests_what_the_first_buy_left(tmp_path: Path) -> None:
    """Two symbols crossing on the same bar: the first (by symbol) takes the cash, the second what is left;
    the account never buys on credit."""
    paths = [write_csv(tmp_path / "infy.csv"), write_csv(tmp_path / "tcs.csv")]
    bars = load_bars(paths, ["INFY", "TCS"], "1d", None, None)
    config = execution_config(Decimal(100_000), Decimal(0), Decimal(0), parse_sizing("all", False), None)
    result = Backtest.create("sma_cross", "sma_cross", PARAMS, config).run(bars)
    buys = [(f.symbol, f.quantity, f.price) for f in result.fills if f.side == "buy"]
    # signal close 12: 100000 / 12 = 8333 units of INFY; the 4 left pay for no TCS at 12
    assert buys == [("INFY", Decimal(8333), Decimal("12.50"))]
    cash = Decimal(100_000)
    for fill in result.fills:
        cash -= (fill.quantity if fill.side == "buy" else -fill.quantity) * fill.price + fill.commission
        assert cash >= -8333 * Decimal("0.50")  # at most the gap from the signal's close to the next open
    assert lowest_cash(Decimal(100_000), result.fills) == 100_000 - 8333 * Decimal(
        "12.50"
    )  # the gap: -4162.50


def test_percent_sizing_that_adds_up_to_more_than_100_shows_as_cash_below_zero(tmp_path: Path) -> None:
    """60 % of equity for each of two symbols crossing on the same bar: both are sized on the equity of
    100,000 at the signal close of 12 (5,000 units each) and fill at the next open of 12.50: 125,000."""
    paths = [write_csv(tmp_path / "infy.csv"), write_csv(tmp_path / "tcs.csv")]
    bars = load_bars(paths, ["INFY", "TCS"], "1d", None, None)
    config = execution_config(
        Decimal(100_000), Decimal(0), Decimal(0), parse_sizing("percent:60", False), None
    )
    result = Backtest.create("sma_cross", "sma_cross", PARAMS, config).run(bars)
    buys = [(f.symbol, f.quantity, f.price) for f in result.fills if f.side == "buy"]
    assert buys[:2] == [("INFY", Decimal(5000), Decimal("12.50")), ("TCS", Decimal(5000), Decimal("12.50"))]
    assert lowest_cash(Decimal(100_000), result.fills) == -25_000
    figures = compute(result.equity, 100_000.0, round_trips(result.fills), result.exposed, result.fills)
    assert figures["lowest_cash"] == -25_000.0
