"""``bastion feed ...``: replay bar files and simulate synthetic bars into ``marketdata.duckdb`` and the
``MARKETDATA`` stream (``md.v1.bar.<SYM>``). Connects as NATS user ``marketdata``."""

from __future__ import annotations

import asyncio
import gc
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from functools import partial
from pathlib import Path
from typing import Annotated, NoReturn

import nats
import numpy as np
import pandas as pd
import typer
from nats.errors import Error as NatsError
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from services.marketdata.adapters.store import BarStore, StoreBusyError
from services.marketdata.domain.bars import SYNTHETIC, BarSeries, file_source
from services.marketdata.domain.sessions import SESSIONS, Session
from services.marketdata.domain.synthetic import DEFAULT_START, bars_before, generate
from services.marketdata.handlers import IngestReport, ingest
from shared.barfiles import (
    TZ_HELP,
    BadZoneError,
    BarFileError,
    InputError,
    input_symbols,
    load_bar_file,
    time_zone,
)
from shared.contracts.market_data import OHLCVBar
from shared.contracts.subjects import InvalidSymbolError, normalize_symbol
from shared.intervals import (
    INTERVAL_HELP,
    BadIntervalError,
    files_interval,
    interval_notice,
    interval_seconds,
    sparser_than,
)
from shared.runtime.bus import UNREACHABLE_HINT, Bus
from shared.runtime.settings import RuntimeSettings

app = typer.Typer(help="Market data: replay bar files, simulate synthetic bars.", no_args_is_help=True)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

#: Runs longer than this show a progress bar.
PROGRESS_FROM = 10_000
#: A replay at full speed stores and publishes this many bars at a time (their events in memory at once).
CHUNK_BARS = 100_000
CONNECT_TIMEOUT = 10.0
MAX_PATH = 5_000_000  # bars drawn per symbol by `feed simulate`, those before --start included
#: A `feed simulate --start` this many bars into the path says so and shows a bar of the symbols drawn.
SKIP_NOTICE_FROM = 200_000


class FeedError(RuntimeError):
    """The broker or the database could not be used."""


def _fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[red]error:[/red] {escape(message)}")
    raise typer.Exit(code)


def _symbol(text: str) -> str:
    try:
        return normalize_symbol(text)
    except InvalidSymbolError as exc:
        _fail(str(exc))


def _interval(text: str) -> str:
    try:
        interval_seconds(text)
    except BadIntervalError as exc:
        _fail(str(exc))
    return text.strip()


def parse_speed(text: str) -> float | None:
    """``max`` (as fast as possible) or ``<n>x`` (n times real time), e.g. ``1x``, ``60x``."""
    value = text.strip().lower()
    if value == "max":
        return None
    match = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)x", value)
    if match is None or float(match.group(1)) <= 0:
        _fail(f"invalid speed {text!r}: use max, 1x, 60x or any <n>x")
    return float(match.group(1))


def _start(text: str | None) -> datetime:
    if text is None:
        return DEFAULT_START
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        _fail(f"invalid --start {text!r}: use ISO-8601, e.g. 2026-01-05T03:45:00Z")
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _session(text: str) -> Session | None:
    name = text.strip().lower()
    if name == "none":
        return None
    if name not in SESSIONS:
        _fail(f"unknown --session {text!r}: use {', '.join([*SESSIONS, 'none'])}")
    return SESSIONS[name]


async def _connect(settings: RuntimeSettings) -> Bus:
    """Connect as this service's user, giving up after a few attempts (a CLI must not hang)."""
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc) or type(exc).__name__)

    servers = settings.servers
    auth = (
        {"user": settings.nats_user, "password": settings.nats_password or ""} if settings.nats_user else {}
    )
    try:
        nc = await asyncio.wait_for(
            nats.connect(
                servers,
                name=f"marketdata-cli:{settings.instance}",
                connect_timeout=2,
                max_reconnect_attempts=2,
                reconnect_time_wait=0.2,
                error_cb=on_error,
                **auth,
            ),
            timeout=CONNECT_TIMEOUT,
        )
    except Exception as exc:
        reason = errors[-1] if errors else (str(exc) or type(exc).__name__)
        raise FeedError(
            f"cannot connect to NATS at {settings.nats_url} as {settings.nats_user or 'anonymous'}: {reason} "
            f"{UNREACHABLE_HINT}"
        ) from None
    return Bus(nc, settings.service, replicas=settings.stream_replicas, max_age=settings.stream_max_age)


#: Bars to store and publish, built when their turn comes (a replay holds one batch of events at a time).
Batch = Callable[[], Sequence[OHLCVBar]]


async def _ingest_over_nats(batches: Sequence[Batch], total: int, speed: float | None) -> list[IngestReport]:
    settings = RuntimeSettings.from_env("marketdata")
    store = BarStore(settings.db_path("marketdata"))
    bus = await _connect(settings)
    try:
        await bus.ensure_stream("MARKETDATA")

        async def publish(chunk: Sequence[OHLCVBar]) -> int:
            return await bus.publish_many([(b.subject(), b) for b in chunk])

        show = total >= PROGRESS_FROM or speed is not None
        columns = (TextColumn("bars"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        reports: list[IngestReport] = []
        with Progress(*columns, console=err, disable=not show) as progress:
            task = progress.add_task("bars", total=total)
            for batch in batches:
                bars = batch()
                # The bars live until their batch is done: out of the cyclic collector's way, or every
                # full collection during the publish would rescan them all (a third of a 100k-bar replay).
                gc.freeze()
                try:
                    reports.append(
                        await ingest(
                            bars, store, publish, speed=speed, progress=lambda n: progress.advance(task, n)
                        )
                    )
                except (NatsError, TimeoutError) as exc:
                    raise FeedError(
                        f"publishing to NATS failed: {exc or type(exc).__name__}; the bars are stored and "
                        "the next replay of the same input publishes the rest"
                    ) from None
                del bars
        return reports
    finally:
        await bus.close()


def _one_interval_each(series: Sequence[BarSeries]) -> None:
    """Refuse bars of a symbol whose stored bars have another interval: analytics and the strategies take
    one interval a symbol (analytics ignores the other's bars as ``interval_mismatch``)."""
    store = BarStore(RuntimeSettings.from_env("marketdata").db_path("marketdata"))
    try:
        stored = store.intervals([s.symbol for s in series])
    except StoreBusyError as exc:
        _fail(str(exc), code=1)
    for s in series:
        have = stored.get(s.symbol, [])
        if have and s.interval not in have:
            _fail(
                f"{s.symbol} has {', '.join(have)} bars in marketdata.duckdb already, and these are "
                f"{s.interval}: a symbol takes one interval (analytics and the strategies follow one). Store "
                f"these under another symbol, or give --interval {have[0]} if they are {have[0]} bars"
            )


def _run(series: Sequence[BarSeries], speed: float | None, verb: str) -> None:
    _one_interval_each(series)
    total = sum(len(s) for s in series)
    batches = _in_time_order_batches(series, CHUNK_BARS if speed is None else total)
    started = time.monotonic()
    try:
        reports = asyncio.run(_ingest_over_nats(batches, total, speed))
    except (FeedError, StoreBusyError) as exc:
        _fail(str(exc), code=1)
    firsts = [r.first for r in reports if r.first is not None]
    lasts = [r.last for r in reports if r.last is not None]
    report = IngestReport(
        bars=sum(r.bars for r in reports),
        stored=sum(r.stored for r in reports),
        published=sum(r.published for r in reports),
        symbols=sorted({s for r in reports for s in r.symbols}),
        first=min(firsts, default=None),
        last=max(lasts, default=None),
        seconds=time.monotonic() - started if len(reports) > 1 else reports[0].seconds,
    )
    out.print(f"[green]{verb}[/green] {escape(report.summary())}")
    behind: dict[str, tuple[int, datetime]] = {}
    for r in reports:  # the first batch of a symbol's saw the newest bar stored before this run
        for symbol, (count, newest) in r.behind.items():
            earlier, first = behind.get(symbol, (0, newest))
            behind[symbol] = (earlier + count, first)
    for symbol, (count, newest) in sorted(behind.items()):
        err.print(
            f"[yellow]warning:[/yellow] {count:,} new bar(s) of {escape(symbol)} are older than its newest "
            f"bar stored before ({newest.astimezone(UTC).isoformat()}). They are stored and published, but "
            "analytics follows a symbol's bars forward only and skips them (ignored_bars: out_of_order), so "
            "no insight or signal comes of them. Replay a symbol's history oldest first, into a home without "
            "newer bars of it: `bastion up`'s synthetic sample holds INFY, TCS and RELIANCE of January 2026, "
            "and `bastion up --home DIR --sample-bars 0` starts without it (README, 'Your own bars')."
        )


@dataclass(frozen=True)
class _File:
    """A bar file read and validated whole, with the symbol its bars get."""

    path: Path
    symbol: str
    frame: pd.DataFrame


def _files(paths: Sequence[Path], symbols: Sequence[str], zone: tzinfo) -> list[_File]:
    """Every file validated, each with its symbol (``--symbol`` in order, else its name), before any bar is
    stored: one bad file, and nothing is."""
    try:
        names = input_symbols(paths, symbols)
        return [_File(path, sym, load_bar_file(path, zone)) for path, sym in zip(paths, names, strict=True)]
    except (InputError, InvalidSymbolError, BarFileError) as exc:
        _fail(str(exc))


@app.command()
def replay(
    inputs: Annotated[
        list[Path], typer.Option("--input", "-i", help="CSV or Parquet bar file; repeat for several symbols")
    ],
    symbols: Annotated[
        list[str] | None,
        typer.Option(
            "--symbol",
            help="Symbol of each --input, in order, e.g. INFY (default: the file's Symbol column, else its "
            "name)",
        ),
    ] = None,
    interval: Annotated[
        str | None, typer.Option(help=f"Bar interval: 1m, 5m, 1h, 1d ... {INTERVAL_HELP}")
    ] = None,
    speed: Annotated[str, typer.Option(help="max, or a multiple of real time such as 1x or 60x")] = "max",
    tz: Annotated[str, typer.Option("--tz", help=TZ_HELP)] = "UTC",
) -> None:
    """Validate whole bar files (all of them first), then store and publish their bars in time order
    (several files merged), each bar once however often replayed."""
    pace = parse_speed(speed)
    if interval is not None:
        _interval(interval)
    try:
        zone = time_zone(tz)
    except BadZoneError as exc:
        _fail(str(exc))
    files = _files(inputs, symbols or [], zone)
    try:
        ivl = files_interval([(str(f.path), f.frame["timestamp"]) for f in files], interval)
    except BadIntervalError as exc:
        _fail(str(exc))
    if interval is None:
        err.print(interval_notice(ivl, spaced=any(len(f.frame) > 1 for f in files)))
    elif warning := sparser_than(
        [(str(f.path), pd.DatetimeIndex(f.frame["timestamp"]).as_unit("ns").asi8) for f in files], ivl
    ):
        err.print(warning, style="yellow")
    series = [BarSeries.of_frame(f.frame, f.symbol, ivl, file_source(f.path.name)) for f in files]
    _run(series, pace, "replayed")


def _in_time_order_batches(series: Sequence[BarSeries], size: int) -> list[Batch]:
    """The bars of every series merged in time order (a tie in the order of the series), in batches of
    ``size``, each batch's events built when its turn comes. In time order, downstream sees one clock across
    the symbols (execution's sessions, breakers and equity curve go by data time)."""
    which = np.concatenate([np.full(len(s), k, dtype=np.int64) for k, s in enumerate(series)])
    rows = np.concatenate([np.arange(len(s), dtype=np.int64) for s in series])
    order = np.argsort(np.concatenate([s.ns for s in series]), kind="stable")
    which, rows = which[order], rows[order]

    def batch(lo: int, hi: int) -> list[OHLCVBar]:
        # each series' rows in [lo, hi) are consecutive: built in bulk, then interleaved as ``which`` says
        part, taken = rows[lo:hi], which[lo:hi]
        built: list[Iterator[OHLCVBar]] = []
        for k, one in enumerate(series):
            mine = part[taken == k]
            built.append(iter(one.events_between(int(mine[0]), int(mine[-1]) + 1) if len(mine) else []))
        return [next(built[k]) for k in taken.tolist()]

    return [partial(batch, lo, min(lo + size, len(order))) for lo in range(0, len(order), max(size, 1))]


@app.command()
def simulate(
    symbols: Annotated[str, typer.Option(help="Comma-separated symbols")] = "INFY,TCS,RELIANCE",
    bars: Annotated[int, typer.Option(min=1, max=MAX_PATH, help="Bars per symbol")] = 500,
    seed: Annotated[int, typer.Option(help="Same seed, same bars")] = 7,
    interval: Annotated[str, typer.Option(help="Bar interval: 1m, 5m, 1h, 1d ...")] = "1m",
    start: Annotated[
        str | None, typer.Option(help="First bar time, ISO-8601 (default 2026-01-05T03:45Z)")
    ] = None,
    session: Annotated[
        str,
        typer.Option(
            help="nse: bars only in NSE hours (09:15-15:30 IST, weekdays); none: a bar every interval"
        ),
    ] = "nse",
) -> None:
    """Deterministic synthetic bars (trend, range and volatile regimes), labelled source=synthetic. One
    price path per symbol and seed starts at 2026-01-05 09:15 IST: a later --start continues it."""
    names = list(dict.fromkeys(_symbol(s) for s in symbols.split(",") if s.strip()))
    if not names:
        _fail("--symbols is empty")
    ivl, first = _interval(interval), _start(start)
    hours = _session(session)
    seconds = interval_seconds(ivl)
    skip = bars_before(first, seconds, hours)  # a later --start continues the path, with no jump
    if skip + bars > MAX_PATH:
        _fail(
            f"--start {first.isoformat()} is {skip:,} {ivl} bars after the path's start "
            f"({DEFAULT_START.isoformat()}); at most {MAX_PATH:,} bars can be drawn, with --bars"
        )
    far = skip >= SKIP_NOTICE_FROM
    if far:  # ~0.3 s a symbol per year of one-minute NSE bars, up to ~17 s at MAX_PATH
        err.print(
            f"--start is {skip:,} {ivl} bars into each symbol's path: drawing them first, then the "
            f"{bars:,} from --start"
        )
    series = []
    columns = (TextColumn("symbols"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, disable=not far) as progress:
        task = progress.add_task("symbols", total=len(names))
        for name in names:
            frame = generate(
                name, bars, seed, interval_seconds=seconds, start=first, session=hours, skip=skip
            )
            series.append(BarSeries.of_frame(frame, name, ivl, SYNTHETIC))
            progress.advance(task)
    _run(series, None, "simulated")
