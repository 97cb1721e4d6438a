"""The long-running market data service: keeps the ``marketdata.symbols`` snapshot in step with
``marketdata.duckdb`` and, optionally, ticks synthetic bars so a demo stack keeps moving."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import structlog

from services.marketdata.adapters.snapshot import KIND, symbols_snapshot
from services.marketdata.adapters.store import BarStore, StoreBusyError
from services.marketdata.domain.bars import SYNTHETIC, to_bars
from services.marketdata.domain.sessions import NSE, next_session_time
from services.marketdata.domain.synthetic import DEFAULT_START, generate, next_bar
from services.marketdata.handlers import ingest
from shared.contracts.market_data import OHLCVBar
from shared.intervals import interval_seconds
from shared.runtime.bus import Bus

log = structlog.get_logger()


@dataclass(frozen=True)
class LiveConfig:
    """``BASTION_MD_LIVE_*``: tick one synthetic bar per symbol every ``seconds`` (0 = off)."""

    seconds: float = 0.0
    symbols: tuple[str, ...] = ("INFY", "TCS", "RELIANCE")
    interval: str = "1m"
    seed: int = 7

    @classmethod
    def from_env(cls) -> LiveConfig:
        raw = os.environ.get("BASTION_MD_LIVE_SECONDS", "").strip() or "0"
        symbols = os.environ.get("BASTION_MD_LIVE_SYMBOLS", "").strip() or "INFY,TCS,RELIANCE"
        config = cls(
            seconds=float(raw),
            symbols=tuple(s.strip().upper() for s in symbols.split(",") if s.strip()),
            interval=os.environ.get("BASTION_MD_LIVE_INTERVAL", "").strip() or "1m",
        )
        interval_seconds(config.interval)
        if config.seconds < 0:
            raise ValueError(f"BASTION_MD_LIVE_SECONDS must be >= 0, not {raw!r}")
        return config


@dataclass
class MarketDataService:
    bus: Bus
    store: BarStore
    snapshot_seconds: float = 2.0
    live: LiveConfig = field(default_factory=LiveConfig)
    bars: int = 0
    symbols: int = 0
    _signature: tuple[int, ...] | None = None

    def detail(self) -> dict[str, str]:
        return {"bars": str(self.bars), "symbols": str(self.symbols), "live": str(self.live.seconds or "off")}

    def _file_signature(self) -> tuple[int, ...]:
        paths = (self.store.path, Path(f"{self.store.path}.wal"))
        stats = [p.stat() for p in paths if p.exists()]
        return tuple(v for s in stats for v in (s.st_mtime_ns, s.st_size))

    async def refresh(self, *, force: bool = False) -> bool:
        """Rewrite the snapshot when the DuckDB file changed since the last one (or ``force``)."""
        signature = self._file_signature()
        if not force and signature == self._signature:
            return False
        try:
            summaries = await asyncio.to_thread(self.store.summaries)
        except StoreBusyError as exc:
            log.warning("marketdata.snapshot_busy", error=str(exc))
            return False
        self.bars, self.symbols = sum(s.bars for s in summaries), len(summaries)
        await self.bus.put_snapshot(KIND, symbols_snapshot(summaries, "marketdata", datetime.now(UTC)))
        self._signature = self._file_signature() if signature else signature
        return True

    async def snapshot_task(self, stop: asyncio.Event) -> None:
        await self.refresh(force=True)
        while not await _wait(stop, self.snapshot_seconds):
            try:
                await self.refresh()
            except Exception as exc:  # NATS down or a DB hiccup: keep running, retry next tick
                log.warning("marketdata.snapshot_failed", error=repr(exc))

    async def tick(self) -> int:
        """Store and publish the next synthetic bar of every live symbol; returns how many were published."""
        bars: list[OHLCVBar] = []
        for symbol in self.live.symbols:
            last = await asyncio.to_thread(self.store.last_bar, symbol, self.live.interval)
            seconds = interval_seconds(self.live.interval)
            if last is None:
                frame = generate(
                    symbol, 1, self.live.seed, interval_seconds=seconds, start=DEFAULT_START, session=NSE
                )
            else:  # the next bar time of the NSE session, as `bastion feed simulate` makes them
                at = next_session_time(last[0].astimezone(UTC), seconds, NSE)
                frame = next_bar(symbol, self.live.seed, at, last[1], interval_seconds=seconds)
            bars.extend(to_bars(frame, symbol, self.live.interval, SYNTHETIC))
        report = await ingest(bars, self.store, self._publish)
        await self.refresh()
        return report.published

    async def live_task(self, stop: asyncio.Event) -> None:
        while not await _wait(stop, self.live.seconds):
            try:
                await self.tick()
            except Exception as exc:  # keep ticking after a transient NATS or DB failure
                log.warning("marketdata.tick_failed", error=repr(exc))

    async def _publish(self, bars: Sequence[OHLCVBar]) -> int:
        return await self.bus.publish_many([(b.subject(), b) for b in bars])


async def _wait(stop: asyncio.Event, seconds: float) -> bool:
    """Wait ``seconds`` or until ``stop``; True when stopping."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        return False
    return True
