"""``bastion backtest --json``: the result written as it is produced, one list item per line.

A million-bar run has a million equity points and tens of thousands of fills and orders. Building the whole
document and indenting it with ``json.dumps(indent=2)`` (pure-Python encoding) took longer than the backtest
and held the text in memory twice; here each item is encoded on its own (events by pydantic, the rest by the C
encoder) and streamed to a temporary file beside the target, renamed over it only once complete, so a failed
write never leaves a truncated file in its place. The document is the same JSON either way.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from typing import IO, Any, cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from bastion.backtest.engine import BacktestResult
from bastion.backtest.stats import RoundTrip


def trade_record(t: RoundTrip) -> dict[str, Any]:
    return {
        "symbol": t.symbol,
        "direction": t.direction,
        "quantity": str(t.quantity),
        "entry_time": t.entry_time.isoformat(),
        "entry_price": str(t.entry_price),
        "exit_time": t.exit_time.isoformat() if t.exit_time else None,
        "exit_price": None if t.exit_price is None else str(t.exit_price),
        "commission": str(t.commission),
        "pnl": None if t.pnl is None else str(t.pnl),
    }


#: the seconds of 1000-01-01 and of 9999-12-31T23:59:59 (four-digit years, where one format fits all)
_FIRST_SECOND, _LAST_SECOND = -30_610_224_000, 253_402_300_799
LINES_PER_WRITE = 10_000
_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


def iso_times(index: pd.DatetimeIndex) -> list[str]:
    """``[t.isoformat() for t in index]`` for UTC times, formatted in one pass (by pyarrow) when none has a
    fraction of a second, as bar files and feeds give them."""
    ticks, per_second = index.asi8, _PER_SECOND[index.unit]
    seconds = ticks // per_second
    whole = len(ticks) and not (ticks % per_second).any()
    if not whole or seconds.min() < _FIRST_SECOND or seconds.max() > _LAST_SECOND:
        return [t.isoformat() for t in index]
    text = pc.cast(pa.array(seconds, pa.timestamp("s")), pa.string())  # 2020-01-01 09:15:00
    text = pc.utf8_replace_slice(text, start=10, stop=11, replacement="T")
    return cast(list[str], pc.binary_join_element_wise(text, "+00:00", "").to_pylist())


def equity_records(equity: pd.Series) -> Iterator[str]:
    """The curve's points as JSON objects ``{"t": ..., "equity": ...}``, the equity rounded to 6 places."""
    values = np.round(equity.to_numpy(dtype=float), 6).tolist()
    for t, v in zip(iso_times(pd.DatetimeIndex(equity.index)), values, strict=True):
        yield f'{{"t": "{t}", "equity": {v!r}}}'  # a float's repr is its JSON (the equity is finite)


def write_result(
    path: Path,
    result: BacktestResult,
    trips: list[RoundTrip],
    figures: dict[str, Any],
    settings: dict[str, Any],
) -> None:
    """``settings``, ``stats``, ``trades``, ``fills``, ``orders``, ``open_positions``, ``equity_curve``."""
    encode = json.JSONEncoder().encode
    sections: list[tuple[str, str | Iterable[str]]] = [
        ("settings", json.dumps(settings, indent=2, default=str)),
        ("stats", json.dumps(figures, indent=2, default=str)),
        ("trades", (encode(trade_record(t)) for t in trips)),
        ("fills", (f.model_dump_json() for f in result.fills)),
        ("orders", (o.model_dump_json() for o in result.orders)),
        ("open_positions", json.dumps({s: str(q) for s, q in result.final_positions.items()}, indent=2)),
        ("equity_curve", equity_records(result.equity)),
    ]
    with _replacing(path) as fh:
        fh.write("{")
        for n, (key, body) in enumerate(sections):
            fh.write(f"{',' if n else ''}\n  {json.dumps(key)}: ")
            if isinstance(body, str):
                fh.write(body.replace("\n", "\n  "))
            else:
                _write_list(fh, body)
        fh.write("\n}\n")


def write_text(path: Path, text: str) -> None:
    """``path.write_text(text)``, through a temporary file renamed over ``path`` once complete."""
    with _replacing(path) as fh:
        fh.write(text)


@contextmanager
def _replacing(path: Path) -> Iterator[IO[str]]:
    """A file to write that replaces ``path`` only when the block completes (else it is removed)."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        with partial.open("w", encoding="utf-8") as fh:
            yield fh
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def _write_list(fh: IO[str], items: Iterable[str]) -> None:
    chunk = list(islice(items := iter(items), LINES_PER_WRITE))
    if not chunk:
        fh.write("[]")
        return
    fh.write("[\n    ")
    while chunk:
        fh.write(",\n    ".join(chunk))
        chunk = list(islice(items, LINES_PER_WRITE))
        if chunk:
            fh.write(",\n    ")
    fh.write("\n  ]")
