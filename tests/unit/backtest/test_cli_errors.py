"""``bastion backtest`` errors: a strategy whose own code raises gets a message naming the strategy, the bar
and the place in its code, exit code 1, no traceback and no output file; a bad number on the command line
gets one line naming the flag, exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from bastion.cli import app
from tests.support.plugins import BAD_CLOSE, FAILS_ON_BAR, install_plugins

HEADER = "timestamp,open,high,low,close,volume\n"


def bar_file(path: Path, closes: list[float]) -> Path:
    rows = [f"2024-01-{i + 1:02d},{c},{c + 1},{c - 1},{c},100\n" for i, c in enumerate(closes)]
    path.write_text(HEADER + "".join(rows))
    return path


@pytest.mark.parametrize(
    "extra", [[], ["--optimize", "bad_close=14,15"], ["--optimize", "bad_close=15,14,13", "--jobs", "2"]]
)
def test_a_strategy_that_raises_is_reported_with_its_bar_and_line_and_exit_code_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: list[str]
) -> None:
    install_plugins(tmp_path / "plugins", monkeypatch, FAILS_ON_BAR)
    data = bar_file(tmp_path / "infy.csv", [10, 11, 12, 13, BAD_CLOSE, 13])
    out = tmp_path / "out.json"
    args = ["backtest", "--strategy", "fails_on_bar", "--input", str(data), "--json", str(out), *extra]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    message = " ".join(result.output.split())
    assert "strategy 'fails_on_bar'" in message
    assert "ZeroDivisionError: division by zero at plugins.py:" in message
    assert "on the INFY bar of 2024-01-05T00:00:00+00:00" in message
    assert not out.exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--cash", "nan"], "--cash 'nan': expected a finite number"),
        (["--cash", "inf"], "--cash 'inf': expected a finite number"),
        (["--cash", "lots"], "--cash 'lots': expected a number"),
        (["--cash", "0"], "--cash must be > 0"),
        (["--cash", "-5"], "--cash must be > 0"),
        (["--slippage-bps", "-1"], "--slippage-bps must be >= 0"),
        (["--slippage-bps", "10000"], "--slippage-bps 10000: must be below 10000 (basis points: 5 is 0.05%)"),
        (["--commission", "1"], "--commission 1: must be below 1 (a fraction of notional: 0.001 is 0.1%)"),
        (["--sizing", "qty:abc"], "--sizing qty:abc: 'abc' is not a number"),
        (
            ["--sizing", "percent:150"],
            "--sizing percent:150: percent: Input should be less than or equal to 100",
        ),
        (["--sizing", "qty:0"], "--sizing qty:0: quantity: Input should be greater than 0"),
    ],
)
def test_bad_numbers_are_one_clear_line_and_exit_code_2(
    tmp_path: Path, flags: list[str], message: str
) -> None:
    data = bar_file(tmp_path / "infy.csv", [10, 11, 12, 13, 14, 15])
    result = CliRunner().invoke(app, ["backtest", "--strategy", "sma_cross", "--input", str(data), *flags])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert f"error: {message}" in text
    assert "Traceback" not in text
    assert "pydantic.dev" not in text


def test_a_grid_over_a_name_the_strategy_lacks_is_refused_before_the_file_is_read(tmp_path: Path) -> None:
    missing = tmp_path / "not-read.csv"  # never read: the grid is refused first
    args = ["backtest", "--strategy", "sma_cross", "--input", str(missing), "--optimize", "fats=5..9 slow=20"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert " ".join(result.output.split()) == (
        "error: --optimize: sma_cross has no parameter 'fats'; its parameters: allow_short, fast, slow"
        " (`bastion strategies list` shows them with their defaults)"
    )


@pytest.mark.parametrize("closes", [[10.0], [10.0, 11.0]])
def test_the_interval_taken_says_whether_it_is_the_spacing_or_a_single_bars_default(
    tmp_path: Path, closes: list[float]
) -> None:
    data = bar_file(tmp_path / "infy.csv", closes)
    result = CliRunner().invoke(app, ["backtest", "--strategy", "sma_cross", "--input", str(data)])
    assert result.exit_code == 0, result.output
    why = "the bars' spacing" if len(closes) > 1 else "a single bar has no spacing to go by, so the default"
    assert f"interval 1d: {why} (--interval gives another)" in " ".join(result.output.split())


def test_a_given_interval_shorter_than_the_bars_spacing_is_warned_of(tmp_path: Path) -> None:
    data = bar_file(tmp_path / "infy.csv", [10.0, 11.0, 12.0])  # daily bars
    args = ["backtest", "--strategy", "sma_cross", "--input", str(data), "--interval", "1h"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "warning: INFY: --interval 1h, but its bars are mostly 1d apart" in " ".join(result.output.split())
