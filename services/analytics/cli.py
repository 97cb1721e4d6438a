"""``bastion analytics ...``: recompute stored insights (``update``), indicators offline (``indicators``).

Exit codes: 0 done, 1 failed (database in use, broker unreachable), 2 bad input.
"""

from __future__ import annotations

import asyncio
import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import duckdb
import pandas as pd
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress

from services.analytics.adapters.store import AnalyticsStore
from services.analytics.config import AnalyticsConfigError, load_config
from services.analytics.domain.confluence import ConfluenceConfig, evaluate
from services.analytics.domain.indicators import INDICATOR_NAMES, compute_all, rows_of
from services.analytics.domain.insight import stable
from services.analytics.recompute import UnknownSymbolError, symbols_to_update, update_symbol
from shared.barfiles import TZ_HELP, BadZoneError, BarFileError, load_bar_file, time_zone
from shared.contracts.analytics import InsightEvent, InsightsRecomputed, RecomputeInsights
from shared.contracts.subjects import ANALYTICS_RECOMPUTE, InvalidSymbolError, normalize_symbol
from shared.intervals import INTERVAL_HELP, BadIntervalError, files_interval, interval_seconds
from shared.runtime.bus import Bus
from shared.runtime.settings import RuntimeSettings

app = typer.Typer(help="Analytics: indicators and insights.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)

#: The columns the issue names for ``indicators --output``, in that order: the first 11 of the service's set.
CSV_INDICATORS = INDICATOR_NAMES[:11]
SymbolOpt = Annotated[str | None, typer.Option("--symbol", help="Only this symbol")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", help="Confluence rules YAML")]


def _fail(message: str, code: int) -> typer.Exit:
    err.print(f"[red]{escape(message)}[/red]", soft_wrap=True)
    return typer.Exit(code)


def _config(path: Path | None) -> ConfluenceConfig:
    try:
        return load_config(path)
    except AnalyticsConfigError as exc:
        raise _fail(str(exc), 2) from None


def _symbol(value: str) -> str:
    try:
        return normalize_symbol(value)
    except InvalidSymbolError as exc:
        raise typer.BadParameter(str(exc), param_hint="--symbol") from None


def _interval(value: str) -> str:
    try:
        interval_seconds(value)
    except BadIntervalError as exc:
        raise typer.BadParameter(str(exc), param_hint="--interval") from None
    return value


@app.command("update")
def update(
    symbol: SymbolOpt = None,
    publish: Annotated[bool, typer.Option(help="Republish the insights (dedupe makes it safe)")] = True,
    config: ConfigOpt = None,
    timeout: Annotated[
        float, typer.Option(min=1, help="Seconds to wait for the running service to finish")
    ] = 600,
) -> None:
    """Recompute indicators and insights of all (or one) symbols from the bars in analytics.duckdb.

    With the analytics service stopped this works on the file itself; while it runs (it holds the file),
    the service does it on request, with its own rules."""
    settings = RuntimeSettings.from_env("analytics")
    path = settings.data_dir / "analytics.duckdb"
    wanted = _symbol(symbol) if symbol is not None else None
    if not path.exists():
        raise _fail(f"no analytics database at {path}: start the analytics service first", 2)
    cfg = _config(config)
    try:
        store = AnalyticsStore.open(path)
    except duckdb.IOException:
        if config is not None:
            raise _fail(
                "--config applies only with the analytics service stopped: the running service recomputes "
                "with its own rules (BASTION_ANALYTICS_CONFIG)",
                2,
            ) from None
        _update_in_service(settings, wanted, publish, timeout)
        return
    try:
        try:
            symbols = symbols_to_update(store, wanted)
        except UnknownSymbolError as exc:
            raise _fail(str(exc), 2) from None
        insights = _update_store(store, symbols, cfg)
    finally:
        store.close()
    if publish and insights:
        try:
            new = asyncio.run(_publish(settings, insights))
        except Exception as exc:  # broker unreachable or refused: cron sees exit 1
            raise _fail(f"publishing failed: {exc}", 1) from None
        out.print(f"published {len(insights)} insight(s), {new} new (the rest were duplicates)")
    out.print(f"[green]updated {len(symbols)} symbol(s), {len(insights)} insight(s)[/green]")


def _update_in_service(settings: RuntimeSettings, symbol: str | None, publish: bool, timeout: float) -> None:
    request = RecomputeInsights.model_validate({"symbol": symbol, "publish": publish})
    try:
        with err.status("the analytics service holds the database: it recomputes on request ..."):
            reply = asyncio.run(_ask_service(settings, request, timeout))
    except Exception as exc:  # no service answering, broker unreachable: cron sees exit 1
        raise _fail(
            f"{settings.data_dir / 'analytics.duckdb'} is in use and the analytics service did not answer: "
            f"{exc or type(exc).__name__} (is it running? is BASTION_NATS_URL right?)",
            1,
        ) from None
    if reply.unknown_symbol:
        raise _fail(f"no stored bars for {symbol}; known: {', '.join(reply.known) or 'none'}", 2)
    if not reply.ok:
        raise _fail(f"the analytics service could not recompute: {reply.error}", 1)
    if publish and reply.insights:
        out.print(
            f"published {reply.insights} insight(s), {reply.published_new} new (the rest were duplicates)"
        )
    out.print(
        f"[green]updated {len(reply.symbols)} symbol(s), {reply.insights} insight(s) "
        "(by the running analytics service)[/green]"
    )


async def _ask_service(
    settings: RuntimeSettings, request: RecomputeInsights, timeout: float
) -> InsightsRecomputed:
    bus = await asyncio.wait_for(Bus.connect(settings, replicas=settings.stream_replicas), timeout=10)
    try:
        msg = await bus.nc.request(ANALYTICS_RECOMPUTE, request.to_json(), timeout=timeout)
    finally:
        await bus.close()
    return InsightsRecomputed.from_json(msg.data)


def _update_store(store: AnalyticsStore, symbols: Sequence[str], cfg: ConfluenceConfig) -> list[InsightEvent]:
    done: list[InsightEvent] = []
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task("recomputing", total=len(symbols))
        for sym in symbols:
            done.extend(update_symbol(store, sym, cfg))
            progress.advance(task)
    return done


async def _publish(settings: RuntimeSettings, insights: Sequence[InsightEvent]) -> int:
    bus = await asyncio.wait_for(Bus.connect(settings, replicas=settings.stream_replicas), timeout=10)
    try:
        await bus.ensure_stream("ANALYTICS")
        return await bus.publish_many([(i.subject(), i) for i in insights])
    finally:
        await bus.close()


@app.command("indicators")
def indicators(
    input_file: Annotated[
        Path, typer.Option("--input", help="CSV or Parquet bar file, validated as `bastion feed replay` does")
    ],
    symbol: Annotated[str, typer.Option("--symbol", help="Symbol of the bars")],
    output: Annotated[Path, typer.Option("--output", help="CSV file to write")],
    interval: Annotated[str | None, typer.Option(help=f"Bar interval, e.g. 1m, 1d {INTERVAL_HELP}")] = None,
    config: ConfigOpt = None,
    tz: Annotated[str, typer.Option("--tz", help=TZ_HELP)] = "UTC",
) -> None:
    """Offline: indicators and the insight's bias, confidence and regime for every bar of a file.

    The whole file is validated first, exactly as ``bastion feed replay`` and ``bastion backtest`` do."""
    sym, cfg = _symbol(symbol), _config(config)
    if interval is not None:
        _interval(interval)
    try:
        frame = load_bar_file(input_file, time_zone(tz))
        interval = files_interval([(str(input_file), frame["timestamp"])], interval)
    except (BadZoneError, BarFileError, BadIntervalError) as exc:
        raise _fail(str(exc), 2) from None
    high, low, close = (frame[name].to_numpy() for name in ("high", "low", "close"))
    values = rows_of(compute_all(high, low, close))
    timestamps = pd.DatetimeIndex(frame["timestamp"])
    try:
        with output.open("w", newline="") as fh:
            _write_rows(csv.writer(fh), timestamps, close.tolist(), values, sym, interval, cfg)
    except OSError as exc:
        raise _fail(f"cannot write {output}: {exc}", 2) from None
    out.print(f"[green]wrote {len(values)} row(s) to {escape(str(output))}[/green]")


def _write_rows(
    writer: Any,
    timestamps: pd.DatetimeIndex,
    closes: Sequence[float],
    values: Sequence[dict[str, float | None]],
    sym: str,
    interval: str,
    cfg: ConfluenceConfig,
) -> None:
    writer.writerow(["timestamp", *CSV_INDICATORS, "bias", "confidence", "regime"])
    for t, close, row in zip(timestamps, closes, values, strict=True):
        clean = {k: stable(v) for k, v in row.items()}
        ins = evaluate(sym, interval, t.to_pydatetime(), close, clean, cfg)
        cells = ["" if clean[n] is None else repr(clean[n]) for n in CSV_INDICATORS]
        writer.writerow([t.isoformat(), *cells, ins.bias, ins.confidence, ins.regime])
