"""What ``bastion backtest`` writes: the JSON document (streamed, the same JSON as encoding the whole
result at once), its times, writes that fail, the report's fill markers, output paths refused before the
run, the summary's figures and the progress bars."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.progress import Progress
from typer.testing import CliRunner

from bastion.backtest import engine, output, report, stats
from bastion.backtest.cli import _frames, _phases, shown
from bastion.backtest.engine import Backtest, BacktestResult, Phase, execution_config, parse_sizing
from bastion.backtest.trips import round_trips
from bastion.cli import app
from services.marketdata.domain.bars import BarSeries
from tests.unit.backtest.test_fast_paths import crafted_bars

Unit = Literal["s", "ms", "us", "ns"]
UNITS: list[Unit] = ["s", "ms", "us", "ns"]


def walk(n: int, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = (100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))).round(2)
    opens = np.r_[100.0, close[:-1]]
    return pd.DataFrame(
        {
            "timestamp": pd.date_range("2024-01-01 03:45", periods=n, freq="1min", tz="UTC"),
            "open": opens,
            "high": np.maximum(opens, close) + 0.05,
            "low": np.minimum(opens, close) - 0.05,
            "close": close,
            "volume": 100.0,
        }
    )


def backtest(n: int, commission: str = "0.001") -> BacktestResult:
    config = execution_config(
        Decimal(100_000), Decimal(commission), Decimal(0), parse_sizing("all", False), None
    )
    series = BarSeries.of_frame(walk(n), "INFY", "1m", "file:infy.csv")
    return Backtest.create("sma_cross", "sma_cross", {"fast": 2, "slow": 5}, config).run([series])


def encoded_at_once(result: BacktestResult, figures: dict[str, Any], settings_: dict[str, Any]) -> Any:
    """The document as one ``json.dumps`` of plain values, built the obvious way (the reference)."""
    trips = round_trips(result.fills)
    doc = {
        "settings": settings_,
        "stats": figures,
        "trades": [output.trade_record(t) for t in trips],
        "fills": [f.model_dump(mode="json") for f in result.fills],
        "orders": [o.model_dump(mode="json") for o in result.orders],
        "open_positions": {s: str(q) for s, q in result.final_positions.items()},
        "equity_curve": [
            {"t": t.isoformat(), "equity": round(float(v), 6)}
            for t, v in zip(result.equity.index, result.equity, strict=True)
        ],
    }
    return json.loads(json.dumps(doc, indent=2))


@pytest.mark.parametrize("lines_per_write", [7, output.LINES_PER_WRITE])
def test_the_streamed_document_is_the_json_of_the_whole_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lines_per_write: int
) -> None:
    monkeypatch.setattr(output, "LINES_PER_WRITE", lines_per_write)
    result = backtest(795)
    trips = round_trips(result.fills)
    assert len(result.fills) > 50  # many fills
    assert result.final_positions  # and one position left open
    figures = stats.compute(result.equity, 100_000.0, trips, result.exposed, result.fills)
    settings_ = {"strategy": "sma_cross", "params": {"fast": 2, "slow": 5}, "bars": 795}
    path = tmp_path / "out.json"
    output.write_result(path, result, trips, figures, settings_)
    text = path.read_text()
    assert json.loads(text) == encoded_at_once(result, figures, settings_)
    assert list(json.loads(text)) == [
        "settings",
        "stats",
        "trades",
        "fills",
        "orders",
        "open_positions",
        "equity_curve",
    ]
    assert text.count("\n") > len(result.equity)  # one item per line, not one huge line


def test_empty_lists_are_written_as_such(tmp_path: Path) -> None:
    result = backtest(4)  # too short for any signal
    assert not result.fills
    path = tmp_path / "out.json"
    output.write_result(path, result, [], {}, {})
    doc = json.loads(path.read_text())
    assert (doc["trades"], doc["fills"], doc["orders"]) == ([], [], [])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(min_value=-(10**11), max_value=2 * 10**11), min_size=1, max_size=20),
    st.sampled_from(UNITS),
    st.booleans(),
)
def test_times_are_formatted_as_isoformat_does(seconds: list[int], unit: Unit, fraction: bool) -> None:
    values = np.array(sorted(seconds), dtype=np.int64) * 1_000_000
    if fraction:
        values[-1] += 1_500  # a millisecond and a half past the second
    if unit in ("s", "ns"):  # these years would not fit nanoseconds since 1970
        values = np.clip(values, -(2**62) // 1000, 2**62 // 1000)
    index = pd.DatetimeIndex(values.astype("datetime64[us]"), tz="UTC").as_unit(unit)
    assert output.iso_times(index) == [t.isoformat() for t in index]


def test_a_write_that_fails_leaves_the_previous_file_and_no_partial_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = backtest(300)
    path = tmp_path / "out.json"
    path.write_text("the previous run\n")

    def failing(equity: pd.Series) -> Any:
        yield '{"t": "x", "equity": 1}'
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(output, "equity_records", failing)
    with pytest.raises(OSError, match="No space"):
        output.write_result(path, result, [], {}, {})
    assert path.read_text() == "the previous run\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def markers(page: str) -> list[str]:
    return re.findall(r"<polygon points=\"[^\"]+\" fill=\"#[0-9a-f]+\"><title>([^<]*)</title>", page)


def test_each_fill_is_marked_at_its_candle_when_candles_are_bars() -> None:
    result = backtest(400)  # under report.MAX_POINTS: one candle per bar
    frame = _frames(result)["INFY"]
    page = report.candle_chart(frame, result.fills, "INFY")
    tips = markers(page)
    assert len(tips) == len(result.fills)
    for fill, tip in zip(result.fills, tips, strict=True):
        assert tip == f"{fill.side} {fill.quantity} @ {fill.price} on {fill.filled_at.isoformat()}"
    # the first fill is drawn at the x of its bar
    first = result.fills[0]
    row = int(np.flatnonzero(frame["timestamp"] == pd.Timestamp(first.filled_at))[0])
    x = report._xs(len(frame))[row]
    assert re.search(rf'<polygon points="{x:.1f},', page)


def test_merged_candles_carry_one_marker_per_side_counting_their_fills() -> None:
    result = backtest(6_000)
    frame = _frames(result)["INFY"]
    page = report.candle_chart(frame, result.fills, "INFY")
    tips = markers(page)
    assert len(result.fills) > 2 * report.MAX_POINTS >= len(tips)  # at most a buy and a sell per candle
    counted = [int(t.split()[0]) if "fills," in t else 1 for t in tips]
    assert sum(counted) == len(result.fills)  # every fill is in exactly one marker
    sides = [t.split()[1] if "fills," in t else t.split()[0] for t in tips]
    assert sum(s == "buy" for s, n in zip(sides, counted, strict=True) for _ in range(n)) == sum(
        f.side == "buy" for f in result.fills
    )


def test_the_report_shows_settings_as_read_and_each_charts_first_and_last_time() -> None:
    result = backtest(200)  # minute bars from 2024-01-01 03:45 UTC
    trips = round_trips(result.fills)
    figures = stats.compute(result.equity, 100_000.0, trips, result.exposed, result.fills)
    run = {
        "params": {"fast": 2, "slow": 5},
        "inputs": ["a.csv", "b.csv"],
        "from": None,
        "close_at_end": False,
    }
    page = report.render(
        "t", figures, result.equity, trips, _frames(result), result.fills, run, ZoneInfo("Asia/Kolkata")
    )
    for text in ("fast=2, slow=5", "a.csv, b.csv", "\u2013", "no"):
        assert f"<td>{text}</td>" in page
    assert "None" not in page
    assert "{" not in page.split("<body>")[1]  # no dict, list or set repr anywhere
    # equity, drawdown and candles: each says when it starts and ends, in the report's zone
    assert page.count(">2024-01-01 09:15</text>") == 3
    assert page.count(">2024-01-01 12:34</text>") == 3  # 03:45 UTC + 199 minutes, in IST


def test_the_report_of_a_long_run_is_written_whole(tmp_path: Path) -> None:
    result = backtest(3_000)
    trips = round_trips(result.fills)
    figures = stats.compute(result.equity, 100_000.0, trips, result.exposed, result.fills)
    page = report.render("t", figures, result.equity, trips, _frames(result), result.fills, {})
    assert page.count("<svg") == 3
    assert page.rstrip().endswith("</html>")
    assert page.count("<tr>") >= len(trips)


@pytest.mark.parametrize(
    ("flag", "target", "needle"),
    [
        ("--json", "missing/out.json", "does not exist"),
        ("--report", ".", "is a directory"),
    ],
)
def test_an_output_that_cannot_be_written_is_refused_before_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flag: str, target: str, needle: str
) -> None:
    data = tmp_path / "infy.csv"
    walk(50).to_csv(data, index=False)

    def no_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("the backtest ran before its output path was checked")

    monkeypatch.setattr(Backtest, "run", no_run)
    args = ["backtest", "--strategy", "sma_cross", "--input", str(data), flag, str(tmp_path / target)]
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 2, done.output
    assert needle in done.output
    assert "Traceback" not in done.output


@pytest.mark.parametrize(
    ("key", "value", "text"),
    [
        ("initial_equity", 100_000.0, "100,000.00"),
        ("final_equity", 145_540.1234, "145,540.12"),
        ("total_return_pct", -3.14159, "-3.14"),
        ("sharpe", 0.54551, "0.546"),
        ("max_drawdown_days", 349.04, "349.0"),
        ("trades", 19_520, "19,520"),
        ("profit_factor", None, "-"),
        ("start", "2020-01-01T00:00:00+00:00", "2020-01-01T00:00:00+00:00"),
    ],
)
def test_summary_figures_are_shown_in_plain_numbers(key: str, value: Any, text: str) -> None:
    assert shown(key, value) == text


def test_progress_shows_deciding_then_executing_each_bar_with_its_own_clock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(engine, "CHUNK", 97)  # several reports per phase
    monkeypatch.setattr(engine, "PROGRESS_STEP", 50)
    bars = crafted_bars()  # two symbols
    config = execution_config(Decimal(100_000), Decimal(0), Decimal(0), parse_sizing("qty:10", False), None)
    with Progress(disable=True) as progress:
        advance = _phases(progress, len(bars))
        seen: list[tuple[str, bool]] = []

        def spy(phase: Phase, n: int) -> None:
            advance(phase, n)
            seen.append((phase, progress.tasks[1].started))

        Backtest.create("sma_cross", "s", {"fast": 3, "slow": 8}, config).run(bars, progress=spy)
        deciding, executing = progress.tasks
    phases = [phase for phase, _ in seen]
    assert phases == sorted(phases)  # every "decide" before the first "execute"
    assert phases.count("decide") >= 4
    assert phases.count("execute") >= 4
    assert [started for phase, started in seen if phase == "decide"] == [False] * phases.count("decide")
    assert deciding.completed == executing.completed == deciding.total == executing.total == len(bars)
