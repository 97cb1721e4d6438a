"""`bastion up` as a user runs it: NATS + services start, sample bars flow, Ctrl-C leaves no process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import nats
import pytest

from shared.runtime.retention import DAY
from tests.e2e.stack_support import READY, UpProcess, pid_alive
from tests.support.wait import eventually, wait_until

SAMPLE_BARS = 40  # per symbol, three symbols (bastion/up.py SAMPLE_SYMBOLS)


async def test_up_runs_the_platform_loads_sample_bars_and_killed_leaves_no_process(tmp_path: Path) -> None:
    """Also: the broker it starts refuses a client without credentials, a second ``bastion up`` on the same
    home is refused, and killed outright (SIGKILL, so it cannot stop them) its children stop by themselves
    (parent-death signal); before, NATS and all six services ran on, holding the ports and DuckDB files, and
    the next ``bastion up`` failed on a locked file. One ``bastion up`` for all, ~8 s; Ctrl-C's clean stop
    is checked by tests/e2e/test_whole_stack.py, SIGHUP's handling by tests/unit/test_up_options.py."""
    home = tmp_path / "state"
    up = UpProcess(home, SAMPLE_BARS, env={"BASTION_STREAM_MAX_AGE": "MARKETDATA=90d"})
    pids: list[int] = []
    try:
        await eventually(lambda: up.saw(READY), timeout=90, what="bastion up to be ready")
        state = up.state()
        pids = up.pids()
        assert "marketdata" in state["children"]
        await assert_anonymous_refused(state["nats_url"])
        assert (home / "secrets" / "operator.password").stat().st_mode & 0o077 == 0
        nc = await nats.connect(
            state["nats_url"], user="operator", password=up.secret("secrets/operator.password")
        )
        try:
            info = await nc.jetstream().stream_info("MARKETDATA")
        finally:
            await nc.close()
        assert info.state.messages == 3 * SAMPLE_BARS
        assert info.config.max_age == 90 * DAY  # the services were given the age
        # a CLI command beside it, in a shell without the variable, judges the streams by the same ages
        clean = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
        listed = subprocess.run(
            [sys.executable, "-m", "bastion", "streams", "list"],
            env={**clean, "BASTION_HOME": str(home), "COLUMNS": "200"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert listed.returncode == 0, listed.stderr
        row = next(line for line in listed.stdout.splitlines() if "MARKETDATA" in line)
        assert [c.strip() for c in row.split("│")[5:7]] == ["90d", "90d"]
        assert "differs" not in listed.stdout
        # a second bastion up on the same home is refused before it starts a second NATS on the same store
        again = subprocess.run(
            [sys.executable, "-m", "bastion", "up", "--home", str(home), "--nats-port", "1"],
            env=clean,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert again.returncode == 1, again.stdout + again.stderr
        holder = f"pid {up.proc.pid}, NATS {state['nats_url']}"
        assert " ".join((again.stdout + again.stderr).split()) == (
            f"error: bastion up already runs with --home {home} ({holder}); stop it first (Ctrl-C in its"
            " terminal), or give another --home"
        )
        assert up.state() == state  # its up.json is left alone
        assert len(pids) == 7, pids  # nats-server and six services
        up.proc.kill()
        up.proc.wait(10)
        wait_until(lambda: not any(pid_alive(p) for p in pids), timeout=30, what="every child to exit")
    finally:
        up.stop()
        for pid in filter(pid_alive, pids):  # a failure leaves nothing running either
            os.kill(pid, signal.SIGKILL)
    con = duckdb.connect(str(home / "data" / "marketdata.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM bars").fetchone() == (3 * SAMPLE_BARS,)
    finally:
        con.close()


async def assert_anonymous_refused(url: str) -> None:
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    with pytest.raises(Exception):
        await nats.connect(
            url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=2, error_cb=on_error
        )
    assert any("authorization" in e.lower() for e in errors), errors
