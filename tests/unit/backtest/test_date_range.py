"""``--from`` / ``--to``: both inclusive; a date is a whole UTC day (an intraday file's bars of the ``--to``
day are all in), a time is that instant (UTC unless it has an offset); a range that ends before it starts is
one clear line and exit code 2; the JSON records the range as given. ``--tz`` makes dates days of that zone
(NSE daily files are often stamped at IST midnight, which is the previous UTC day)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from bastion.cli import app


def minute_file(path: Path) -> Path:
    """Three NSE sessions (03:45-09:59 UTC) of one-minute bars, 2024-03-26 to 2024-03-28."""
    rows = ["timestamp,open,high,low,close,volume"]
    for day in (26, 27, 28):
        start = datetime(2024, 3, day, 3, 45, tzinfo=UTC)
        for m in range(375):
            c = 100 + (m % 40) * 0.5 + day
            rows.append(f"{(start + timedelta(minutes=m)).isoformat()},{c},{c + 1},{c - 1},{c},10")
    path.write_text("\n".join(rows) + "\n")
    return path


def ist_daily_file(path: Path) -> Path:
    """Daily bars stamped at midnight IST (18:30 UTC of the day before), 2024-03-18 to 2024-03-29."""
    rows = ["timestamp,open,high,low,close,volume"]
    for day in range(18, 30):
        c = 100 + day
        rows.append(f"2024-03-{day:02d}T00:00:00+05:30,{c},{c + 1},{c - 1},{c},10")
    path.write_text("\n".join(rows) + "\n")
    return path


def run(tmp_path: Path, *flags: str, daily: bool = False) -> tuple[int, str, dict]:
    out = tmp_path / "out.json"
    bars = ist_daily_file(tmp_path / "tcs.csv") if daily else minute_file(tmp_path / "infy.csv")
    args = ["backtest", "--strategy", "sma_cross", "--input", str(bars)]
    result = CliRunner().invoke(
        app, [*args, "--interval", "1d" if daily else "1m", "--json", str(out), *flags]
    )
    return (
        result.exit_code,
        " ".join(result.output.split()),
        json.loads(out.read_text()) if out.exists() else {},
    )


@pytest.mark.parametrize(
    ("flags", "first", "last"),
    [
        ((), "2024-03-26T03:45:00+00:00", "2024-03-28T09:59:00+00:00"),
        (
            ("--from", "2024-03-27", "--to", "2024-03-27"),
            "2024-03-27T03:45:00+00:00",
            "2024-03-27T09:59:00+00:00",
        ),
        (("--to", "2024-03-27"), "2024-03-26T03:45:00+00:00", "2024-03-27T09:59:00+00:00"),
        (
            ("--from", "2024-03-27T09:00", "--to", "2024-03-28T04:00"),
            "2024-03-27T09:00:00+00:00",
            "2024-03-28T04:00:00+00:00",
        ),
        (("--from", "2024-03-28T09:30+05:30"), "2024-03-28T04:00:00+00:00", "2024-03-28T09:59:00+00:00"),
    ],
)
def test_the_range_keeps_the_bars_a_user_means(
    tmp_path: Path, flags: tuple[str, ...], first: str, last: str
) -> None:
    code, output, result = run(tmp_path, *flags)
    assert code == 0, output
    curve = result["equity_curve"]
    assert (curve[0]["t"], curve[-1]["t"]) == (first, last)
    given = dict(zip(flags[::2], flags[1::2], strict=True))
    assert (result["settings"]["from"], result["settings"]["to"]) == (given.get("--from"), given.get("--to"))


@pytest.mark.parametrize(
    ("flags", "first", "last"),
    [
        (
            ("--from", "2024-03-20", "--to", "2024-03-22"),
            "2024-03-20T18:30:00+00:00",  # UTC days: the bars of March 21 to 23 IST
            "2024-03-22T18:30:00+00:00",
        ),
        (
            ("--tz", "Asia/Kolkata", "--from", "2024-03-20", "--to", "2024-03-22"),
            "2024-03-19T18:30:00+00:00",  # the bars of March 20 to 22 IST
            "2024-03-21T18:30:00+00:00",
        ),
    ],
)
def test_with_tz_a_date_is_a_day_of_that_zone(
    tmp_path: Path, flags: tuple[str, ...], first: str, last: str
) -> None:
    code, output, result = run(tmp_path, *flags, daily=True)
    assert code == 0, output
    curve = result["equity_curve"]
    assert (curve[0]["t"], curve[-1]["t"]) == (first, last)
    assert result["settings"]["tz"] == dict(zip(flags[::2], flags[1::2], strict=True)).get("--tz", "UTC")


def test_with_tz_a_time_without_an_offset_is_in_that_zone(tmp_path: Path) -> None:
    code, output, result = run(
        tmp_path, "--tz", "Asia/Kolkata", "--from", "2024-03-27T09:15", "--to", "2024-03-27T15:29"
    )
    assert code == 0, output
    curve = result["equity_curve"]
    assert (curve[0]["t"], curve[-1]["t"]) == ("2024-03-27T03:45:00+00:00", "2024-03-27T09:59:00+00:00")


def test_with_tz_the_files_times_without_an_offset_are_in_that_zone_too(tmp_path: Path) -> None:
    path = tmp_path / "infy.csv"
    rows = ["timestamp,open,high,low,close,volume"]
    for day in (26, 27):  # an NSE export in IST, without offsets: 09:15 to 15:29 each day
        start = datetime(2024, 3, day, 9, 15)
        rows += [
            f"{start + timedelta(minutes=m)},{100 + m % 40},{101 + m % 40},{99 + m % 40},{100 + m % 40},10"
            for m in range(375)
        ]
    path.write_text("\n".join(rows) + "\n")
    out = tmp_path / "out.json"
    args = [
        "backtest",
        "--strategy",
        "sma_cross",
        "--input",
        str(path),
        "--interval",
        "1m",
        "--json",
        str(out),
    ]
    result = CliRunner().invoke(app, [*args, "--tz", "Asia/Kolkata", "--from", "2024-03-27"])
    assert result.exit_code == 0, result.output
    curve = json.loads(out.read_text())["equity_curve"]
    assert (curve[0]["t"], curve[-1]["t"]) == ("2024-03-27T03:45:00+00:00", "2024-03-27T09:59:00+00:00")
    result = CliRunner().invoke(app, [*args, "--from", "2024-03-27"])  # without --tz: UTC wall times
    assert result.exit_code == 0, result.output
    curve = json.loads(out.read_text())["equity_curve"]
    assert (curve[0]["t"], curve[-1]["t"]) == ("2024-03-27T09:15:00+00:00", "2024-03-27T15:29:00+00:00")


def test_with_tz_the_terminal_and_the_report_show_times_there_and_the_json_keeps_utc(tmp_path: Path) -> None:
    report = tmp_path / "r.html"
    code, output, result = run(tmp_path, "--tz", "Asia/Kolkata", "--report", str(report))
    assert code == 0, output
    assert "start │ 2024-03-26T09:15:00+05:30" in output
    assert "end │ 2024-03-28T15:29:00+05:30" in output
    assert (result["stats"]["start"], result["stats"]["end"]) == (
        "2024-03-26T03:45:00+00:00",
        "2024-03-28T09:59:00+00:00",
    )
    page = report.read_text()
    assert "<td>2024-03-26T09:15:00+05:30</td>" in page
    trip = result["trades"][0]
    shown = datetime.fromisoformat(trip["entry_time"]).astimezone(ZoneInfo("Asia/Kolkata")).isoformat()
    assert trip["entry_time"].endswith("+00:00")
    assert f"<td>{shown}</td>" in page  # the trade list
    assert f"on {shown}" in page  # the fill's marker on the candles
    assert "+00:00" not in page.replace(trip["entry_time"], "")  # nothing else in UTC


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--from", "2024-03-28", "--to", "2024-03-27"), "error: --from 2024-03-28 is after --to 2024-03-27"),
        (("--to", "2024-03"), "error: --to '2024-03': expected a date such as 2024-01-31 or a time"),
        (("--from", "2024-04-01"), "error: no bars in the selected range"),
        (
            ("--tz", "IST"),
            "error: --tz 'IST': not a time zone; use an IANA name such as Asia/Kolkata, or UTC",
        ),
        (("--tz", "Asia"), "error: --tz 'Asia': not a time zone"),
    ],
)
def test_a_bad_range_is_one_clear_line_and_exit_code_2(
    tmp_path: Path, flags: tuple[str, ...], message: str
) -> None:
    code, output, result = run(tmp_path, *flags)
    assert code == 2
    assert message in output
    assert "Traceback" not in output
    assert not result
