"""``bastion analytics indicators`` (offline file -> CSV) and ``update`` (DuckDB -> NATS)."""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from services.analytics.adapters.store import AnalyticsStore
from services.analytics.cli import app
from services.analytics.domain.confluence import ConfluenceConfig
from services.analytics.domain.indicators import compute_all
from services.analytics.handlers import AnalyticsService
from shared.contracts.analytics import InsightEvent
from shared.runtime.bus import Bus
from shared.runtime.settings import RuntimeSettings
from tests.integration.test_analytics_service import expected_payloads, stream_payloads
from tests.unit.analytics.support import bars, walk

runner = CliRunner()

#: The columns the analytics issue asks ``bastion analytics indicators --output`` to write, in order.
ISSUE_COLUMNS = [
    "timestamp",
    *("sma_20", "ema_20", "rsi_14", "macd", "macd_signal", "macd_hist", "atr_14"),
    *("bb_upper", "bb_middle", "bb_lower", "adx_14", "bias", "confidence", "regime"),
]


def bar_file(path: Path, rows: int = 80) -> pd.DataFrame:
    data = walk(5, rows)
    frame = pd.DataFrame(
        {
            "Timestamp": pd.date_range("2024-01-01", periods=rows, freq="D"),
            "Open": [r[2] for r in data],
            "High": [r[0] for r in data],
            "Low": [r[1] for r in data],
            "Close": [r[2] for r in data],
            "Volume": 100.0,
        }
    )
    if path.suffix == ".parquet":
        frame.set_index("Timestamp").to_parquet(path)  # the time as the index, as Yahoo downloads keep it
    else:
        frame.to_csv(path, index=False)
    return frame


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_indicators_writes_one_row_per_bar_with_the_documented_columns(tmp_path: Path, suffix: str) -> None:
    frame = bar_file(tmp_path / f"bars{suffix}")
    result = runner.invoke(
        app,
        [
            "indicators",
            "--input",
            str(tmp_path / f"bars{suffix}"),
            "--symbol",
            "infy",
            "--output",
            str(tmp_path / "o.csv"),
        ],
    )
    assert result.exit_code == 0, result.output
    with (tmp_path / "o.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ISSUE_COLUMNS
    assert len(rows) == len(frame)
    assert rows[0]["timestamp"] == "2024-01-01T00:00:00+00:00"
    assert rows[13]["rsi_14"] == ""
    assert rows[14]["rsi_14"] != ""
    expected = compute_all(frame["High"].to_numpy(), frame["Low"].to_numpy(), frame["Close"].to_numpy())[
        "rsi_14"
    ]
    assert float(rows[-1]["rsi_14"]) == pytest.approx(float(expected[-1]), rel=1e-11)
    assert {r["bias"] for r in rows} <= {"bullish", "bearish", "neutral"}
    assert np.isfinite([float(r["confidence"]) for r in rows]).all()


def test_indicators_refuses_bad_input_with_exit_code_2(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("when,open,high\n2024-01-01,1,2\n")
    result = runner.invoke(
        app, ["indicators", "--input", str(tmp_path / "bad.csv"), "--symbol", "X", "--output", "o.csv"]
    )
    assert result.exit_code == 2
    assert "missing column" in result.output
    result = runner.invoke(
        app, ["indicators", "--input", "nope.csv", "--symbol", "BAD.NS", "--output", "o.csv"]
    )
    assert result.exit_code == 2
    assert "Traceback" not in result.output


async def _fill_store(path: Path, symbol: str, n: int) -> list[InsightEvent]:
    published: list[InsightEvent] = []

    async def publish(events: object) -> None:
        published.extend(events)  # type: ignore[arg-type]

    async def snapshot(key: str, value: object) -> None:
        return None

    store = AnalyticsStore.open(path)
    service = AnalyticsService(store, publish, snapshot, ConfluenceConfig())
    series = bars(symbol, n, seed=21)
    for i in range(0, n, 16):
        await service.on_bars(series[i : i + 16])
    store.close()
    return published


async def test_update_recomputes_the_same_insights_and_republishes_them(
    nats_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    live = await _fill_store(tmp_path / "analytics.duckdb", "INFY", 90)
    await _fill_store(tmp_path / "analytics.duckdb", "TCS", 0)
    monkeypatch.setenv("BASTION_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("BASTION_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("BASTION_NATS_URL", nats_url)

    assert runner.invoke(app, ["update", "--symbol", "TCS"]).exit_code == 2
    result = await asyncio.to_thread(runner.invoke, app, ["update", "--symbol", "infy"])
    assert result.exit_code == 0, result.output
    assert "90 new" in result.output

    bus = await Bus.connect(RuntimeSettings(service="probe", nats_url=nats_url))
    got = await stream_payloads(bus)
    await bus.close()
    assert got == {"INFY": [e.to_json() for e in live]}
    assert got["INFY"] == expected_payloads(bars("INFY", 90, seed=21))
    store = AnalyticsStore.open(tmp_path / "analytics.duckdb")
    assert [b.encode() for b in store.insight_bodies("INFY")] == got["INFY"]
    store.close()
