"""Helpers shared by bench scripts: a throw-away nats-server, service subprocesses, peak RSS, percentiles,
durable consumer backlogs and the ``RESULT {json}`` line that `make bench` (bench/__main__.py) tabulates.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from nats.js import JetStreamContext

from bastion.natsd import NatsServer
from services.execution.domain.config import RiskLimits
from shared.contracts.market_data import OHLCVBar

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def nats_server() -> Iterator[tuple[NatsServer, Path]]:
    """A fresh nats-server with JetStream in a temporary folder, and that folder; stopped on exit."""
    with tempfile.TemporaryDirectory() as tmp:
        server = NatsServer(store_dir=Path(tmp) / "js", log_file=Path(tmp) / "nats.log").start()
        try:
            yield server, Path(tmp)
        finally:
            server.stop()


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``python <args>`` from the project root with ``env`` on top of ours, output into ``log``."""
    with log.open("wb") as sink:
        return subprocess.Popen(
            [sys.executable, *args], cwd=ROOT, env=os.environ | env, stdout=sink, stderr=subprocess.STDOUT
        )


def stop_all(procs: list[subprocess.Popen[bytes]], timeout: float = 30) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


def peak_rss_mib(pid: int) -> float | None:
    """Peak resident set size (``VmHWM``) of a live process in MiB, or None when it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError, ValueError, IndexError):
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time a live process has used so far, in seconds, or None when unreadable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (FileNotFoundError, ProcessLookupError, ValueError, IndexError):
        return None


def pct(values: list[float], q: int) -> float:
    """The ``q``-th percentile (1..99) of ``values``; nan when there are fewer than two."""
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else float("nan")


async def durable_backlog(js: JetStreamContext, streams: list[str]) -> dict[str, int]:
    """Per durable consumer of ``streams``: messages not yet delivered plus delivered but not yet acked."""
    backlog: dict[str, int] = {}
    for stream in streams:
        for info in await js.consumers_info(stream):
            if info.config.durable_name:
                backlog[info.config.durable_name] = (info.num_pending or 0) + (info.num_ack_pending or 0)
    return backlog


async def stream_count(js: JetStreamContext, stream: str) -> int:
    return int((await js.stream_info(stream)).state.messages)


def result(
    name: str, value: float, unit: str, *, reference: str = "", ratio: float | None = None, goal: str = ""
) -> None:
    """Print one ``RESULT {json}`` line for the `make bench` table."""
    row: dict[str, Any] = {"name": name, "value": value, "unit": unit, "reference": reference}
    row |= {"ratio": ratio, "goal": goal}
    print("RESULT " + json.dumps(row), flush=True)


def limits_off() -> dict[str, Any]:
    """Every risk limit and breaker that can be switched off, as ``null`` for an execution config file."""
    return {k: v for k, v in RiskLimits.off().model_dump(mode="json").items() if v is None}


def bar(
    symbol: str, ts: datetime, close: float, *, open_: float | None = None, wick: float = 0.5
) -> OHLCVBar:
    """A synthetic 1-minute bar at ``ts`` closing at ``close`` (opening at ``open_``, default the close)."""
    first = close if open_ is None else open_
    return OHLCVBar.build(
        producer="bench",
        key=OHLCVBar.key_for(symbol, "1m", ts.isoformat()),
        occurred_at=ts,
        symbol=symbol,
        interval="1m",
        timestamp=ts,
        open=first,
        high=max(first, close) + wick,
        low=min(first, close) - wick,
        close=close,
        volume=1.0,
        source="synthetic",
    )


def cpu_model() -> str:
    """The CPU model from /proc/cpuinfo, or the platform's processor string elsewhere."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"
