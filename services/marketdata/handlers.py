"""Bars in, effects out: store the new bars, publish the unpublished ones, mark them published.

``HANDLERS``-style single entry point used by the CLI (replay, simulate), the live ticker of the service
and the benchmark. Publishing is injected (``Publish``), so tests and the benchmark can pass their own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from shared.contracts.market_data import OHLCVBar


class Saved(Protocol):
    @property
    def stored(self) -> int: ...

    @property
    def pending(self) -> list[OHLCVBar]: ...

    @property
    def behind(self) -> dict[str, tuple[int, datetime]]: ...


class Store(Protocol):
    """What ingest needs of the bar store (adapters/store.py ``BarStore``)."""

    def save(self, bars: Sequence[OHLCVBar]) -> Saved: ...

    def mark_published(self, bars: Sequence[OHLCVBar]) -> None: ...


Publish = Callable[[Sequence[OHLCVBar]], Awaitable[int]]
Progress = Callable[[int], None]

#: Bars published (and marked published) per round trip at full speed.
CHUNK = 10_000


@dataclass(frozen=True)
class IngestReport:
    bars: int
    stored: int
    published: int
    symbols: list[str]
    first: datetime | None
    last: datetime | None
    seconds: float
    #: symbol -> (new bars older than its newest stored bar, that bar's time), as ``SaveResult.behind``
    behind: dict[str, tuple[int, datetime]] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.bars / self.seconds if self.seconds > 0 else float(self.bars)

    def summary(self) -> str:
        span = f"{self.first.isoformat()} .. {self.last.isoformat()}" if self.first and self.last else "-"
        return (
            f"{self.bars} bars ({self.stored} new, {self.published} published) for {len(self.symbols)} "
            f"symbol(s) {','.join(self.symbols)}, {span}, in {self.seconds:.2f}s ({self.rate:,.0f} bars/s)"
        )


async def ingest(
    bars: Sequence[OHLCVBar],
    store: Store,
    publish: Publish,
    *,
    speed: float | None = None,
    progress: Progress | None = None,
) -> IngestReport:
    """Store ``bars`` (each once), then publish every one not yet published. ``speed`` paces publishing
    at that multiple of real time (bar time gaps divided by ``speed``); ``None`` is as fast as possible."""
    started = time.monotonic()
    saved = await asyncio.to_thread(store.save, bars)
    pending = saved.pending
    if speed is None:
        published = await _publish_chunks(pending, store, publish, progress, skipped=len(bars) - len(pending))
    else:
        published = await _publish_paced(pending, store, publish, speed, progress)
    return IngestReport(
        bars=len(bars),
        stored=saved.stored,
        published=published,
        symbols=sorted({b.symbol for b in bars}),
        first=min((b.timestamp for b in bars), default=None),
        last=max((b.timestamp for b in bars), default=None),
        seconds=time.monotonic() - started,
        behind=saved.behind,
    )


async def _publish_chunks(
    pending: Sequence[OHLCVBar], store: Store, publish: Publish, progress: Progress | None, skipped: int
) -> int:
    if progress and skipped:
        progress(skipped)
    published = 0
    marking: asyncio.Task[None] | None = None
    try:
        for start in range(0, len(pending), CHUNK):
            chunk = pending[start : start + CHUNK]
            published += await publish(chunk)
            if marking is not None:
                await marking
            # marking runs in a thread while the next chunk is published
            marking = asyncio.create_task(asyncio.to_thread(store.mark_published, chunk))
            if progress:
                progress(len(chunk))
    finally:
        if marking is not None:
            await marking
    return published


async def _publish_paced(
    pending: Sequence[OHLCVBar], store: Store, publish: Publish, speed: float, progress: Progress | None
) -> int:
    published = 0
    done: list[OHLCVBar] = []
    previous: datetime | None = None
    for bar in pending:
        if previous is not None:
            await asyncio.sleep(max((bar.timestamp - previous).total_seconds() / speed, 0.0))
        previous = bar.timestamp
        published += await publish([bar])
        done.append(bar)
        if progress:
            progress(1)
        if len(done) >= 50:
            await asyncio.to_thread(store.mark_published, done)
            done = []
    await asyncio.to_thread(store.mark_published, done)
    return published
