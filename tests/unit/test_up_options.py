"""``bastion up``'s options: a bad port or a home it cannot make is one clear error, exit 2, before anything
starts (no traceback, no state folder made)."""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType

import pytest
from typer.testing import CliRunner

from bastion.cli import app
from bastion.up import stop_on_signals


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--nats-port", "99999"],
            "Invalid value for '--nats-port': Input should be less than or equal to 65535",
        ),
        (
            ["--dashboard-port", "0"],
            "Invalid value for '--dashboard-port': Input should be greater than or equal",
        ),
    ],
)
def test_a_port_out_of_range_is_refused_before_anything_starts(
    tmp_path: Path, flags: list[str], message: str
) -> None:
    result = CliRunner().invoke(app, ["up", "--home", str(tmp_path / "home"), *flags])
    assert result.exit_code == 2
    assert message in " ".join(result.output.replace("│", " ").split())
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not (tmp_path / "home").exists()


def test_a_home_that_cannot_be_made_is_named(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder\n")
    home = tmp_path / "a-file" / "home"
    result = CliRunner().invoke(app, ["up", "--home", str(home)])
    assert result.exit_code == 2
    assert isinstance(result.exception, SystemExit)
    assert "".join(result.output.split()) == f"error:cannotuse--home{home}:Notadirectory"


@pytest.mark.parametrize("started_ignoring_hup", [False, True])
def test_sighup_stops_bastion_up_unless_it_was_started_under_nohup(started_ignoring_hup: bool) -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        raise AssertionError("not called here")

    saved = {s: signal.getsignal(s) for s in (signal.SIGHUP, signal.SIGTERM)}
    try:
        signal.signal(signal.SIGHUP, signal.SIG_IGN if started_ignoring_hup else signal.SIG_DFL)
        stop_on_signals(handler)
        assert signal.getsignal(signal.SIGTERM) is handler
        assert signal.getsignal(signal.SIGHUP) is (signal.SIG_IGN if started_ignoring_hup else handler)
    finally:
        for signum, previous in saved.items():
            signal.signal(signum, previous)
