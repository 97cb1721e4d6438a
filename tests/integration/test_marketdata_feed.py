"""`bastion feed replay|simulate` against a real nats-server and a real marketdata.duckdb."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import nats
import pandas as pd
import pytest
from nats.js.errors import NotFoundError
from typer.testing import CliRunner, Result

from bastion.backtest.engine import load_bars
from services.marketdata import cli
from services.marketdata.adapters.store import BarStore
from services.marketdata.cli import app
from services.marketdata.domain.bars import file_source, to_bars
from shared.barfiles import load_bar_file
from shared.contracts.market_data import OHLCVBar

HEADER = "timestamp,open,high,low,close,volume\n"


def bars_csv(path: Path, rows: int = 30, header: str = HEADER) -> Path:
    lines = []
    for i in range(rows):
        ts = pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(days=i)
        o = 100 + i
        lines.append(f"{ts.isoformat()},{o},{o + 2},{o - 1},{o + 1},{1000 + i}")
    path.write_text(header + "\n".join(lines) + "\n")
    return path


def feed(args: list[str], nats_url: str, data: Path) -> Result:
    env = {
        "BASTION_NATS_URL": nats_url,
        "BASTION_DATA_DIR": str(data),
        "BASTION_HOME": str(data / "home"),
        "BASTION_NATS_USER": None,
        "BASTION_NATS_PASSWORD": None,
        "BASTION_NATS_PASSWORD_FILE": None,
    }
    return CliRunner().invoke(app, args, env=env)


def stream_messages(nats_url: str, subject: str = "md.>") -> int:
    async def count() -> int:
        nc = await nats.connect(nats_url)
        try:
            js = nc.jetstream()
            info = await js.stream_info("MARKETDATA", subjects_filter=subject)
            return sum((info.state.subjects or {}).values())
        except NotFoundError:
            return 0
        finally:
            await nc.close()

    return asyncio.run(count())


def ensure_stream(nats_url: str) -> None:
    async def create() -> None:
        nc = await nats.connect(nats_url)
        await nc.jetstream().add_stream(name="MARKETDATA", subjects=["md.>"])
        await nc.close()

    asyncio.run(create())


def stored(data: Path) -> list[tuple[str, str, int, bool]]:
    path = data / "marketdata.duckdb"
    if not path.exists():
        return []
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(
            "SELECT symbol, interval, count(*)::INT, bool_and(published) FROM bars GROUP BY ALL ORDER BY 1"
        ).fetchall()
    finally:
        con.close()


def parquet_of(csv: Path) -> Path:
    path = csv.with_suffix(".parquet")
    pd.read_csv(csv, parse_dates=["timestamp"]).to_parquet(path)
    return path


@pytest.mark.parametrize(
    "make",
    [
        lambda p: bars_csv(p / "generic.csv"),
        lambda p: bars_csv(p / "yahoo.csv", header="Date,Open,High,Low,Close,Volume\n"),
        lambda p: bars_csv(p / "lower.csv", header="DATE,open,HIGH,low,Close,volume\n"),
        lambda p: parquet_of(bars_csv(p / "typed.csv")),
    ],
    ids=["csv", "yahoo-header", "mixed-case", "parquet"],
)
def test_replay_stores_and_publishes_every_bar_of_a_file(nats_url: str, tmp_path: Path, make: object) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    result = feed(
        ["replay", "--input", str(path), "--symbol", "infy", "--interval", "1d"], nats_url, tmp_path
    )
    assert result.exit_code == 0, result.output
    assert "30 bars (30 new, 30 published)" in result.output
    assert "2024-01-01T00:00:00+00:00 .. 2024-01-30T00:00:00+00:00" in result.output
    assert "bars/s" in result.output
    assert stored(tmp_path) == [("INFY", "1d", 30, True)]
    assert stream_messages(nats_url, "md.v1.bar.INFY") == 30


def test_published_bars_are_the_contract_with_file_source(nats_url: str, tmp_path: Path) -> None:
    path = bars_csv(tmp_path / "b.csv", rows=2)
    assert feed(["replay", "--input", str(path), "--symbol", "TCS"], nats_url, tmp_path).exit_code == 0

    async def first() -> dict[str, object]:
        nc = await nats.connect(nats_url)
        msg = await nc.jetstream().get_msg("MARKETDATA", 1)
        await nc.close()
        assert msg.headers is not None
        assert msg.data is not None
        body: dict[str, object] = json.loads(msg.data)
        assert msg.headers["Nats-Msg-Id"] == body["event_id"]
        return body

    body = asyncio.run(first())
    assert (body["symbol"], body["source"], body["interval"]) == ("TCS", "file:b.csv", "1d")
    assert body["timestamp"] == body["occurred_at"] == "2024-01-01T00:00:00Z"


def test_malformed_csv_is_rejected_with_line_and_column_and_nothing_is_published(
    nats_url: str, tmp_path: Path
) -> None:
    ensure_stream(nats_url)
    path = bars_csv(tmp_path / "bad.csv", rows=10)
    lines = path.read_text().splitlines()
    lines[7] = lines[7].replace(",1006", ",lots")  # line 8 of the file, volume column
    path.write_text("\n".join(lines) + "\n")
    result = feed(["replay", "--input", str(path), "--symbol", "INFY"], nats_url, tmp_path)
    assert result.exit_code == 2
    assert f"{path}: line 8, column 'volume': not a number: 'lots'" in result.output
    assert "Traceback" not in result.output
    assert stream_messages(nats_url) == 0
    assert stored(tmp_path) == []


def test_replaying_the_same_file_twice_stores_and_publishes_each_bar_once(
    nats_url: str, tmp_path: Path
) -> None:
    path = bars_csv(tmp_path / "twice.csv", rows=25)
    args = ["replay", "--input", str(path), "--symbol", "RELIANCE"]
    assert feed(args, nats_url, tmp_path).exit_code == 0
    again = feed(args, nats_url, tmp_path)
    assert again.exit_code == 0, again.output
    assert "25 bars (0 new, 0 published)" in again.output
    assert stored(tmp_path) == [("RELIANCE", "1d", 25, True)]
    assert stream_messages(nats_url) == 25


def test_bars_stored_but_not_published_before_a_crash_are_published_by_the_next_replay(
    nats_url: str, tmp_path: Path
) -> None:
    path = bars_csv(tmp_path / "crash.csv", rows=12)
    bars = to_bars(load_bar_file(path), "INFY", "1d", file_source(path.name))
    BarStore(tmp_path / "marketdata.duckdb").save(bars[:5])  # stored, then the process died
    result = feed(["replay", "--input", str(path), "--symbol", "INFY"], nats_url, tmp_path)
    assert "12 bars (7 new, 12 published)" in result.output, result.output
    assert stream_messages(nats_url) == 12


def test_replay_with_tz_reads_times_without_an_offset_as_that_zone_and_as_the_backtest_does(
    nats_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "infy.csv"
    rows = [f"2024-03-01 09:{15 + i}:00,{100 + i},{102 + i},{99 + i},{101 + i},{10 + i}" for i in range(5)]
    path.write_text(HEADER + "\n".join(rows) + "\n")  # an NSE export in IST, without offsets
    args = [
        "replay",
        "--input",
        str(path),
        "--symbol",
        "INFY",
        "--tz",
        "Asia/Kolkata",
    ]  # interval: the spacing
    result = feed(args, nats_url, tmp_path)
    assert result.exit_code == 0, result.output
    assert "interval 1m: the bars' spacing (--interval gives another)" in result.output
    assert "2024-03-01T03:45:00+00:00 .. 2024-03-01T03:49:00+00:00" in result.output
    assert stored(tmp_path) == [("INFY", "1m", 5, True)]
    con = duckdb.connect(str(tmp_path / "marketdata.duckdb"), read_only=True)
    ids = [str(r[0]) for r in con.execute('SELECT event_id FROM bars ORDER BY "timestamp"').fetchall()]
    con.close()
    backtest = load_bars([path], ["INFY"], None, None, None, ZoneInfo("Asia/Kolkata"))[0]
    assert ids == [str(backtest.event_id(i)) for i in range(5)]  # the same bars, so parity holds
    assert ids != [
        str(b.event_id) for b in to_bars(load_bar_file(path), "INFY", "1m", file_source(path.name))
    ]


def test_a_minute_file_given_a_daily_interval_is_refused_and_nothing_is_stored(tmp_path: Path) -> None:
    path = tmp_path / "infy.csv"
    rows = [f"2024-03-01T03:{45 + i}:00Z,{100 + i},{102 + i},{99 + i},{101 + i},{10 + i}" for i in range(5)]
    path.write_text(HEADER + "\n".join(rows) + "\n")
    result = feed(["replay", "--input", str(path), "--interval", "1d"], "nats://127.0.0.1:1", tmp_path)
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())
    assert (
        "bars at 2024-03-01T03:45:00+00:00 and 2024-03-01T03:46:00+00:00 are closer than half the interval 1d"
        in said
    )
    assert (
        "1d, and 3 more pair(s) too (the file's bars are mostly 1m apart): give the file's --interval" in said
    )
    assert stored(tmp_path) == []


def test_a_symbol_keeps_the_interval_of_its_stored_bars(nats_url: str, tmp_path: Path) -> None:
    daily = bars_csv(tmp_path / "infy.csv", rows=3)
    assert feed(["replay", "--input", str(daily)], nats_url, tmp_path).exit_code == 0
    minutes = tmp_path / "minutes" / "infy.csv"
    minutes.parent.mkdir()
    rows = [f"2024-03-01T03:{45 + i}:00Z,{100 + i},{102 + i},{99 + i},{101 + i},{10 + i}" for i in range(5)]
    minutes.write_text(HEADER + "\n".join(rows) + "\n")
    refused = feed(["replay", "--input", str(minutes)], nats_url, tmp_path)
    assert refused.exit_code == 2, refused.output
    said = " ".join(refused.output.split())
    assert (
        "INFY has 1d bars in marketdata.duckdb already, and these are 1m: a symbol takes one interval" in said
    )
    simulated = feed(["simulate", "--symbols", "TCS,INFY", "--bars", "3"], nats_url, tmp_path)
    assert simulated.exit_code == 2, simulated.output  # its default 1m, and nothing of TCS either
    assert stored(tmp_path) == [("INFY", "1d", 3, True)]
    assert feed(["replay", "--input", str(minutes), "--symbol", "INFY_M"], nats_url, tmp_path).exit_code == 0
    assert (
        feed(["replay", "--input", str(daily)], nats_url, tmp_path).exit_code == 0
    )  # the same interval: fine
    assert stored(tmp_path) == [("INFY", "1d", 3, True), ("INFY_M", "1m", 5, True)]


def test_a_backfill_older_than_the_stored_bars_is_stored_and_warned_about(
    nats_url: str, tmp_path: Path
) -> None:
    (tmp_path / "whole").mkdir()
    whole = bars_csv(tmp_path / "whole" / "INFY.csv", rows=30)
    lines = whole.read_text().splitlines(keepends=True)
    newer, older = tmp_path / "INFY.csv", tmp_path / "old" / "INFY.csv"
    newer.write_text(lines[0] + "".join(lines[21:]))  # the last 10 days first, as a live feed would store
    older.parent.mkdir()
    older.write_text(lines[0] + "".join(lines[1:26]))  # then history: 20 days older, 5 stored already
    first = feed(["replay", "--input", str(newer)], nats_url, tmp_path)
    assert first.exit_code == 0, first.output
    assert "warning" not in first.output
    backfill = feed(["replay", "--input", str(older)], nats_url, tmp_path)
    assert backfill.exit_code == 0, backfill.output
    said = " ".join(backfill.output.split())
    assert "25 bars (20 new, 20 published)" in said, said
    assert (
        "warning: 20 new bar(s) of INFY are older than its newest bar stored before "
        "(2024-01-30T00:00:00+00:00). They are stored and published, but analytics follows a symbol's bars "
        "forward only and skips them" in said
    ), said
    assert "`bastion up --home DIR --sample-bars 0` starts without it" in said, said
    assert stored(tmp_path) == [("INFY", "1d", 30, True)]
    again = feed(["replay", "--input", str(older)], nats_url, tmp_path)  # nothing new: nothing to warn of
    assert again.exit_code == 0, again.output
    assert "warning" not in again.output


def test_simulate_loads_the_bastion_up_sample(nats_url: str, tmp_path: Path) -> None:
    args = ["simulate", "--symbols", "INFY,TCS,RELIANCE", "--bars", "40", "--seed", "7", "--interval", "1m"]
    result = feed(args, nats_url, tmp_path)
    assert result.exit_code == 0, result.output
    assert "120 bars (120 new, 120 published) for 3 symbol(s) INFY,RELIANCE,TCS" in result.output
    assert stored(tmp_path) == [
        ("INFY", "1m", 40, True),
        ("RELIANCE", "1m", 40, True),
        ("TCS", "1m", 40, True),
    ]
    assert stream_messages(nats_url, "md.v1.bar.TCS") == 40
    con = duckdb.connect(str(tmp_path / "marketdata.duckdb"), read_only=True)
    assert con.execute("SELECT DISTINCT source FROM bars").fetchall() == [("synthetic",)]
    con.close()
    assert feed(args, nats_url, tmp_path).exit_code == 0
    assert stream_messages(nats_url) == 120


def test_simulate_with_the_same_seed_stores_the_same_bars(nats_url: str, tmp_path: Path) -> None:
    args = ["simulate", "--symbols", "TCS", "--bars", "30", "--seed", "3", "--start", "2026-02-02T04:00:00Z"]
    assert feed(args, nats_url, tmp_path / "a").exit_code == 0
    assert feed(args, nats_url, tmp_path / "b").exit_code == 0
    assert feed([*args[:-3], "4", *args[-2:]], nats_url, tmp_path / "c").exit_code == 0

    def closes(folder: Path) -> list[tuple[object, ...]]:
        con = duckdb.connect(str(folder / "marketdata.duckdb"), read_only=True)
        rows = con.execute(
            'SELECT "timestamp", open, high, low, close, volume FROM bars ORDER BY 1'
        ).fetchall()
        con.close()
        return rows

    assert closes(tmp_path / "a") == closes(tmp_path / "b")
    assert closes(tmp_path / "a") != closes(tmp_path / "c")
    assert str(closes(tmp_path / "a")[0][0]).startswith("2026-02-02 04:00:00")

    start = ["--start", "2026-01-05T03:55:00Z"]  # the 11th bar of the path: a later run continues it
    assert feed([*args[:4], "10", *args[5:7]], nats_url, tmp_path / "d").exit_code == 0
    assert feed([*args[:4], "10", *args[5:7], *start], nats_url, tmp_path / "d").exit_code == 0
    assert feed([*args[:4], "20", *args[5:7]], nats_url, tmp_path / "e").exit_code == 0
    continued, whole = closes(tmp_path / "d"), closes(tmp_path / "e")
    assert [(r[0], r[4]) for r in continued] == [(r[0], r[4]) for r in whole]


def test_simulate_far_from_the_paths_start_says_it_draws_the_bars_before_first(
    nats_url: str, tmp_path: Path
) -> None:
    def simulate(symbols: str, start: str, folder: str) -> str:
        args = ["simulate", "--symbols", symbols, "--bars", "5", "--session", "none", "--start", start]
        result = feed(args, nats_url, tmp_path / folder)
        assert result.exit_code == 0, result.output
        return " ".join(result.output.split())

    assert "drawing" not in simulate("TCS", "2026-01-06T00:00Z", "near")  # 1,215 bars before: no wait
    said = simulate("TCS,INFY", "2026-07-01T00:00Z", "far")  # 254,655 one-minute bars before
    notice = "--start is 254,655 1m bars into each symbol's path: drawing them first, then the 5 from --start"
    assert notice in said, said
    assert "10 bars (10 new, 10 published) for 2 symbol(s) INFY,TCS" in said, said


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["replay", "--input", "nope.csv", "--symbol", "INFY"], "nope.csv: no such file"),
        (["replay", "--input", "{csv}", "--symbol", "RELIANCE.NS"], "drop exchange suffixes"),
        (["replay", "--input", "{csv}", "--symbol", "INFY", "--speed", "fast"], "invalid speed 'fast'"),
        (
            ["replay", "--input", "{csv}", "--symbol", "INFY", "--interval", "daily"],
            "invalid interval 'daily'",
        ),
        (
            ["replay", "--input", "{csv}", "--symbol", "INFY", "--tz", "IST"],
            "--tz 'IST': not a time zone; use an IANA name such as Asia/Kolkata, or UTC",
        ),
        (["simulate", "--symbols", "IN FY", "--bars", "3"], "invalid symbol 'IN FY'"),
        (["simulate", "--symbols", "INFY", "--start", "monday"], "invalid --start 'monday'"),
        (["simulate", "--symbols", "INFY", "--session", "bse"], "unknown --session 'bse': use nse, none"),
        (
            ["simulate", "--symbols", "INFY", "--session", "none", "--start", "2090-01-01"],
            "bars after the path's start (2026-01-05T03:45:00+00:00); at most 5,000,000",
        ),
    ],
)
def test_bad_input_gives_a_clear_error_and_exit_code_2(tmp_path: Path, args: list[str], needle: str) -> None:
    csv = bars_csv(tmp_path / "ok.csv", rows=2)
    args = [a.replace("{csv}", str(csv)) for a in args]
    result = feed(args, "nats://127.0.0.1:1", tmp_path)
    assert result.exit_code == 2
    assert needle in " ".join(result.output.split())
    assert "Traceback" not in result.output
    assert stored(tmp_path) == []


def test_an_unreachable_broker_is_a_clear_error_not_a_hang(tmp_path: Path) -> None:
    path = bars_csv(tmp_path / "b.csv", rows=3)
    result = feed(["replay", "--input", str(path), "--symbol", "INFY"], "nats://127.0.0.1:1", tmp_path)
    assert result.exit_code == 1
    assert "cannot connect to NATS at nats://127.0.0.1:1" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "marketdata.duckdb").exists()  # no empty database left where nothing came


def test_a_single_bar_says_its_interval_is_the_default_not_a_spacing(tmp_path: Path) -> None:
    path = bars_csv(tmp_path / "b.csv", rows=1)
    result = feed(["replay", "--input", str(path), "--symbol", "INFY"], "nats://127.0.0.1:1", tmp_path)
    said = " ".join(result.output.split())
    assert (
        "interval 1d: a single bar has no spacing to go by, so the default (--interval gives another)" in said
    )


def test_a_given_interval_shorter_than_the_bars_spacing_is_warned_of(tmp_path: Path) -> None:
    path = bars_csv(tmp_path / "b.csv", rows=3)  # daily bars
    args = ["replay", "--input", str(path), "--symbol", "INFY", "--interval", "1m"]
    said = "".join(feed(args, "nats://127.0.0.1:1", tmp_path).output.split())  # rich wraps inside paths
    assert f"warning:{path}:--interval1m,butitsbarsaremostly1dapart" in said


def test_paced_replay_publishes_in_bar_time_divided_by_speed(nats_url: str, tmp_path: Path) -> None:
    path = bars_csv(tmp_path / "paced.csv", rows=4)  # daily bars: 3 gaps of 86,400 s
    args = ["replay", "--input", str(path), "--symbol", "INFY", "--speed", "1728000x"]  # 0.05 s per gap
    started = time.monotonic()
    result = feed(args, nats_url, tmp_path)
    assert time.monotonic() - started >= 0.15
    assert result.exit_code == 0, result.output
    assert "4 bars (4 new, 4 published)" in result.output
    assert stored(tmp_path) == [("INFY", "1d", 4, True)]
    assert stream_messages(nats_url) == 4


# -- several files in one replay ---------------------------------------------------------------------------
def published(nats_url: str) -> list[dict[str, str]]:
    """Every bar on the stream (its JSON), in stream order."""

    async def read() -> list[dict[str, str]]:
        nc = await nats.connect(nats_url)
        js = nc.jetstream()
        info = await js.stream_info("MARKETDATA")
        out = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            out.append(json.loads((await js.get_msg("MARKETDATA", seq)).data or b"{}"))
        await nc.close()
        return out

    return asyncio.run(read())


def published_bars(nats_url: str) -> list[tuple[str, str]]:
    """(symbol, timestamp) of every bar on the stream, in stream order."""
    return [(b["symbol"], b["timestamp"]) for b in published(nats_url)]


def test_several_files_are_replayed_each_as_its_symbol_in_time_order(
    nats_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "CHUNK_BARS", 7)  # batches that cut across both files
    infy, tcs = bars_csv(tmp_path / "infy.csv", rows=30), bars_csv(tmp_path / "tcs.csv", rows=20)
    result = feed(["replay", "--input", str(infy), "--input", str(tcs)], nats_url, tmp_path)
    assert result.exit_code == 0, result.output
    assert "replayed 50 bars (50 new, 50 published) for 2 symbol(s) INFY,TCS, " in result.output
    assert "2024-01-01T00:00:00+00:00 .. 2024-01-30T00:00:00+00:00" in result.output
    assert stored(tmp_path) == [("INFY", "1d", 30, True), ("TCS", "1d", 20, True)]
    got = published_bars(nats_url)
    assert [s for s, _ in got] == ["INFY", "TCS"] * 20 + ["INFY"] * 10  # one clock across the symbols
    assert [t for _, t in got] == sorted(t for _, t in got)
    expected = {str(b.event_id) for path, sym in ((infy, "INFY"), (tcs, "TCS")) for b in file_bars(path, sym)}
    assert {b["event_id"] for b in published(nats_url)} == expected  # the very bars one replay per file gives
    again = feed(["replay", "--input", str(infy), "--input", str(tcs)], nats_url, tmp_path)
    assert "replayed 50 bars (0 new, 0 published)" in again.output, again.output
    named = feed(
        ["replay", "-i", str(infy), "-i", str(tcs), "--symbol", "wipro", "--symbol", "M&M"],
        nats_url,
        tmp_path,
    )
    assert named.exit_code == 0, named.output
    assert [row[0] for row in stored(tmp_path)] == ["INFY", "M&M", "TCS", "WIPRO"]


def file_bars(path: Path, symbol: str) -> list[OHLCVBar]:
    return to_bars(load_bar_file(path), symbol, "1d", file_source(path.name))


def test_a_paced_replay_of_several_files_interleaves_their_bars_in_time(
    nats_url: str, tmp_path: Path
) -> None:
    infy, tcs = bars_csv(tmp_path / "infy.csv", rows=3), bars_csv(tmp_path / "tcs.csv", rows=3)
    args = ["replay", "-i", str(infy), "-i", str(tcs), "--speed", "86400000x"]  # 1 ms per day of bars
    result = feed(args, nats_url, tmp_path)
    assert result.exit_code == 0, result.output
    assert "replayed 6 bars (6 new, 6 published) for 2 symbol(s) INFY,TCS" in result.output
    got = published_bars(nats_url)
    assert [s for s, _ in got] == ["INFY", "TCS"] * 3
    assert [t for _, t in got] == sorted(t for _, t in got)


@pytest.mark.parametrize(
    ("names", "extra", "needle"),
    [
        (["infy.csv", "bad.csv"], [], "bad.csv: line 3, column 'high': not a number: 'x'"),
        (
            ["infy.csv", "tcs.csv"],
            ["--symbol", "INFY"],
            "2 --input files but 1 --symbol values; give one per file",
        ),
        (["infy.csv", "INFY.parquet"], [], "INFY.parquet: symbol INFY is given by"),
        (
            ["infy.csv", "RELIANCE.NS.csv"],
            [],
            "RELIANCE.NS.csv: no --symbol given, and the file's name is not a symbol",
        ),
    ],
    ids=["one-bad-file", "symbol-count", "same-symbol", "name-not-a-symbol"],
)
def test_one_bad_input_among_several_stores_nothing(
    nats_url: str, tmp_path: Path, names: list[str], extra: list[str], needle: str
) -> None:
    paths = []
    for name in names:
        csv = bars_csv(tmp_path / f"{name}.csv", rows=3)
        if name == "bad.csv":
            csv.write_text(csv.read_text().replace(",103,", ",x,", 1))
        target = tmp_path / name
        if name.endswith(".parquet"):
            target = parquet_of(csv).rename(target)
        else:
            csv.rename(target)
        paths.append(target)
    args = ["replay", *(a for p in paths for a in ("--input", str(p))), *extra]
    result = feed(args, nats_url, tmp_path)
    assert result.exit_code == 2, result.output
    assert needle in " ".join(result.output.split())
    assert "Traceback" not in result.output
    assert stored(tmp_path) == []
    assert stream_messages(nats_url) == 0
