"""Read OHLCV bars of one symbol from a CSV or Parquet file, for the offline ``indicators`` command.

Accepted layout (the common one of ``bastion feed replay`` files): a header row; a time column named
``timestamp`` (or ``datetime``, ``date``, ``time``, ``ts``); ``open, high, low, close``; optional
``volume`` (0 when absent) and ``symbol`` (rows of other symbols are skipped). Column names are
case-insensitive; extra columns are ignored; a Parquet file may keep the time as its index (as
``DataFrame.to_parquet`` of a Yahoo download does). Times without a zone are taken as UTC. Rows are sorted
by time; a repeated time keeps its first row.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

TIME_COLUMNS = ("timestamp", "datetime", "date", "time", "ts")
PRICE_COLUMNS = ("open", "high", "low", "close")


class BarFileError(ValueError):
    """A file that cannot be read as bars, with a message that says why."""


@dataclass(frozen=True)
class BarFrame:
    timestamps: pd.DatetimeIndex
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    dropped_duplicates: int


def _load(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise BarFileError(f"no such file: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
            named = str(frame.index.name or "").lower()
            return frame.reset_index() if named in TIME_COLUMNS else frame
        if suffix in (".csv", ".txt"):
            return pd.read_csv(path)
    except Exception as exc:  # any parser error becomes one clear message
        raise BarFileError(f"cannot read {path}: {exc}") from None
    raise BarFileError(f"{path}: unsupported file type {suffix!r} (use .csv or .parquet)")


def read_bars(path: Path, symbol: str) -> BarFrame:
    frame = _load(path)
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    time_col = next((c for c in TIME_COLUMNS if c in frame.columns), None)
    missing = [c for c in PRICE_COLUMNS if c not in frame.columns]
    if time_col is None or missing:
        need = ", ".join(([] if time_col else ["timestamp"]) + missing)
        raise BarFileError(f"{path}: missing column(s) {need}; found {', '.join(frame.columns)}")
    if "symbol" in frame.columns:
        frame = frame[frame["symbol"].astype(str).str.strip().str.upper() == symbol.upper()]
        if frame.empty:
            raise BarFileError(f"{path}: no rows for symbol {symbol}")
    if frame.empty:
        raise BarFileError(f"{path}: no rows")
    try:
        times = pd.to_datetime(frame[time_col], utc=True)
        prices = frame[list(PRICE_COLUMNS)].astype("float64")
    except (ValueError, TypeError) as exc:
        raise BarFileError(f"{path}: bad value: {exc}") from None
    volume = (
        frame["volume"].astype("float64") if "volume" in frame.columns else pd.Series(0.0, index=frame.index)
    )
    table = pd.concat([times.rename("t"), prices, volume.rename("volume")], axis=1)
    _check(table, path)
    table = table.sort_values("t", kind="stable")
    deduped = table.drop_duplicates("t", keep="first")
    return BarFrame(
        timestamps=pd.DatetimeIndex(deduped["t"]),
        open=deduped["open"].to_numpy(),
        high=deduped["high"].to_numpy(),
        low=deduped["low"].to_numpy(),
        close=deduped["close"].to_numpy(),
        volume=deduped["volume"].to_numpy(),
        dropped_duplicates=len(table) - len(deduped),
    )


def _check(table: pd.DataFrame, path: Path) -> None:
    bad = table[list(PRICE_COLUMNS)].isna().any(axis=1) | table["t"].isna()
    bad |= (table[list(PRICE_COLUMNS)] <= 0).any(axis=1)
    bad |= table["high"] < table[["open", "close", "low"]].max(axis=1)
    bad |= table["low"] > table[["open", "close"]].min(axis=1)
    if bad.any():
        row = int(table.index[np.flatnonzero(bad.to_numpy())[0]])
        raise BarFileError(
            f"{path}: data row {row + 1} is not a valid bar (missing, non-positive or high < low)"
        )
