"""``bastion analytics indicators --input FILE``: the bar files it accepts and refuses, through the real CLI.

It reads with ``shared.barfiles.load_bar_file``, as ``bastion feed replay`` and ``bastion backtest`` do:
a file one of them refuses, the others refuse too, with the same message, exit code 2 and no traceback."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner, Result

from bastion.cli import app
from shared.barfiles import BarFileError, load_bar_file

runner = CliRunner()

HEADER = "timestamp,open,high,low,close,volume\n"


def rows(n: int = 30) -> list[str]:
    """n valid bars a day apart, as CSV lines without the header."""
    days = pd.date_range("2024-01-01", periods=n, freq="D")
    return [f"{d.date()},{100 + i},{102 + i},{99 + i},{101 + i},{1000 + i}" for i, d in enumerate(days)]


def indicators(path: Path, out: Path) -> Result:
    args = ["analytics", "indicators", "--input", str(path), "--symbol", "INFY", "--output", str(out)]
    return runner.invoke(app, args)


def written(out: Path) -> list[dict[str, str]]:
    with out.open() as fh:
        return list(csv.DictReader(fh))


def test_a_yahoo_export_is_read_with_offsets_in_utc_and_extra_columns_ignored(tmp_path: Path) -> None:
    text = "Date,Open,High,Low,Close,Adj Close,Volume\n"
    for line in rows(29):
        *prices, volume = line.split(",")
        text += ",".join([*prices, prices[4], volume]) + "\n"  # Adj Close: a copy of Close
    text = text.replace("2024-01-01,", "2024-01-01T09:15:00+05:30,", 1)
    (tmp_path / "b.csv").write_text(text)
    result = indicators(tmp_path / "b.csv", tmp_path / "o.csv")
    assert result.exit_code == 0, result.output
    assert "wrote 29 row(s)" in result.output
    got = written(tmp_path / "o.csv")
    assert [r["timestamp"] for r in got[:2]] == ["2024-01-01T03:45:00+00:00", "2024-01-02T00:00:00+00:00"]
    assert got[18]["sma_20"] == ""
    assert got[19]["sma_20"] != ""


def test_a_parquet_file_may_keep_the_date_as_its_index(tmp_path: Path) -> None:
    days = pd.DatetimeIndex(pd.date_range("2024-01-01", periods=25, freq="D"), name="Date")
    frame = pd.DataFrame(
        {"Open": 100.0, "High": 102.0, "Low": 99.0, "Close": 101.0, "Volume": 1000}, index=days
    )
    frame.to_parquet(tmp_path / "b.parquet")
    result = indicators(tmp_path / "b.parquet", tmp_path / "o.csv")
    assert result.exit_code == 0, result.output
    got = written(tmp_path / "o.csv")
    assert len(got) == 25
    assert got[-1]["timestamp"] == "2024-01-25T00:00:00+00:00"


GOOD = rows(3)
BAD_FILES = {
    # refused before as well, with the old reader's own words; now the replay reader's
    "missing_column": ("b.csv", "Date,Open,High\n2024-01-01,1,2\n", "missing column"),
    "high_below_close": ("b.csv", HEADER + "2024-01-01,100,100.5,99,101,1\n", "below max(open, close)"),
    "not_a_number": ("b.csv", HEADER + GOOD[0] + "\n2024-01-02,1,2,0.5,x,1\n", "not a number: 'x'"),
    "not_a_timestamp": ("b.csv", HEADER + "yesterday,100,102,99,101,1\n", "not a timestamp"),
    "markup_in_a_cell": ("b.csv", HEADER + "2024-01-01,100,102,99,[/x],1\n", "not a number: '[/x]'"),
    "no_rows": ("b.csv", HEADER, "no data rows"),
    "empty": ("b.csv", "", "empty file"),
    # accepted by the old lenient reader, which sorted, deduplicated, filtered or filled them in
    "unsorted": ("b.csv", HEADER + "\n".join([GOOD[1], GOOD[0], GOOD[2]]) + "\n", "is not after"),
    "repeated_time": ("b.csv", HEADER + "\n".join([GOOD[0], GOOD[0], GOOD[1]]) + "\n", "is not after"),
    "no_volume": ("b.csv", "date,open,high,low,close\n2024-01-01,100,102,99,101\n", "missing column"),
    "two_symbols": (
        "b.csv",
        "symbol," + HEADER + "INFY," + GOOD[0] + "\nTCS," + GOOD[0] + "\n",
        "holds several symbols (INFY, TCS)",
    ),
    "negative_volume": ("b.csv", HEADER + "2024-01-01,100,102,99,101,-5\n", "volume must be >= 0"),
    "txt_suffix": ("b.txt", HEADER + GOOD[0] + "\n", "unknown file type"),
}


def expected_error(path: Path) -> str:
    """What the shared reader says about ``path``: the message every command must print."""
    with pytest.raises(BarFileError) as info:
        load_bar_file(path)
    return str(info.value)


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_a_bad_file_is_refused_with_the_readers_message_and_exit_code_2(tmp_path: Path, case: str) -> None:
    name, text, needle = BAD_FILES[case]
    (tmp_path / name).write_text(text)
    message = expected_error(tmp_path / name)
    assert needle in message
    result = indicators(tmp_path / name, tmp_path / "o.csv")
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "o.csv").exists()


@pytest.mark.parametrize("case", ["high_below_close", "repeated_time", "two_symbols", "markup_in_a_cell"])
def test_replay_backtest_and_indicators_print_the_same_message_for_the_same_file(
    tmp_path: Path, case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BASTION_NATS_URL", "nats://127.0.0.1:1")  # never reached: the file is refused first
    monkeypatch.setenv("BASTION_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("BASTION_HOME", str(tmp_path / "home"))
    name, text, _ = BAD_FILES[case]
    path = tmp_path / name
    path.write_text(text)
    message = expected_error(path)
    results = {
        "indicators": indicators(path, tmp_path / "o.csv"),
        "replay": runner.invoke(app, ["feed", "replay", "--input", str(path), "--symbol", "INFY"]),
        "backtest": runner.invoke(app, ["backtest", "--strategy", "sma_cross", "--input", str(path)]),
    }
    for command, result in results.items():
        assert (result.exit_code, message in result.output) == (2, True), (command, result.output)
        assert "Traceback" not in result.output, command
    assert not (tmp_path / "data" / "marketdata.duckdb").exists()


def test_a_missing_or_undecodable_file_is_refused_with_exit_code_2(tmp_path: Path) -> None:
    result = indicators(tmp_path / "none.csv", tmp_path / "o.csv")
    assert result.exit_code == 2
    assert f"{tmp_path / 'none.csv'}: no such file" in result.output
    (tmp_path / "latin1.csv").write_bytes(HEADER.encode() + "2024-01-01,1\xe9,2,0.5,1,1\n".encode("latin-1"))
    result = indicators(tmp_path / "latin1.csv", tmp_path / "o.csv")
    assert result.exit_code == 2
    assert f"{tmp_path / 'latin1.csv'}: cannot read:" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "o.csv").exists()
    for name in ("none.csv", "latin1.csv"):  # the backtest names the file, among several inputs too
        other = tmp_path / "other.csv"
        other.write_text(HEADER + "2024-01-01,1,2,0.5,1,1\n")
        args = ["backtest", "--strategy", "sma_cross", "--input", str(other), "--input", str(tmp_path / name)]
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        assert str(tmp_path / name) in result.output
        assert "Traceback" not in result.output


def test_with_tz_times_without_an_offset_are_wall_times_of_that_zone(tmp_path: Path) -> None:
    minutes = [f"2024-03-01 09:{15 + i}:00,100,102,99,101,1000" for i in range(25)]
    (tmp_path / "b.csv").write_text(HEADER + "\n".join(minutes) + "\n")  # an NSE export in IST
    args = ["analytics", "indicators", "--input", str(tmp_path / "b.csv"), "--symbol", "INFY"]
    result = runner.invoke(app, [*args, "--output", str(tmp_path / "o.csv"), "--tz", "Asia/Kolkata"])
    assert result.exit_code == 0, result.output
    got = written(tmp_path / "o.csv")
    assert (got[0]["timestamp"], got[-1]["timestamp"]) == (
        "2024-03-01T03:45:00+00:00",
        "2024-03-01T04:09:00+00:00",
    )
    result = runner.invoke(app, [*args, "--output", str(tmp_path / "x.csv"), "--tz", "India"])
    assert result.exit_code == 2
    assert "--tz 'India': not a time zone; use an IANA name such as Asia/Kolkata, or UTC" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "x.csv").exists()


def test_replay_backtest_and_indicators_refuse_a_wall_time_a_zone_skips_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BASTION_NATS_URL", "nats://127.0.0.1:1")  # never reached: the file is refused first
    monkeypatch.setenv("BASTION_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("BASTION_HOME", str(tmp_path / "home"))
    path = tmp_path / "b.csv"
    path.write_text(HEADER + "2024-03-31 00:30,100,102,99,101,1\n2024-03-31 01:30,100,102,99,101,1\n")
    zone = ["--tz", "Europe/London"]  # 01:30 of March 31, 2024 is skipped there
    message = f"{path}: line 3, column 'timestamp': '2024-03-31 01:30' is not one instant in Europe/London"
    results = {
        "indicators": runner.invoke(
            app,
            [
                "analytics",
                "indicators",
                "--input",
                str(path),
                "--symbol",
                "INFY",
                "--output",
                str(tmp_path / "o.csv"),
                *zone,
            ],
        ),
        "replay": runner.invoke(app, ["feed", "replay", "--input", str(path), "--symbol", "INFY", *zone]),
        "backtest": runner.invoke(app, ["backtest", "--strategy", "sma_cross", "--input", str(path), *zone]),
    }
    for command, result in results.items():
        assert (result.exit_code, message in " ".join(result.output.split())) == (2, True), (
            command,
            result.output,
        )
        assert "Traceback" not in result.output, command
    assert not (tmp_path / "data" / "marketdata.duckdb").exists()
