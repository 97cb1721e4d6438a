"""Bar files (CSV and Parquet): read, then validate the WHOLE file before anything is used.

The one reader of OHLCV bar files: ``bastion feed replay``, ``bastion backtest`` and
``bastion analytics indicators`` all call ``load_bar_file``, so a file is accepted or refused, with the same
message, everywhere. It lives in ``shared`` because services may not import each other.

Accepted headers, case-insensitive, in any column order, extra columns (such as ``Adj Close``) ignored:
``timestamp,open,high,low,close,volume`` or the Yahoo / broker export ``Date,Open,High,Low,Close,Volume``
(``datetime`` is accepted for the time column too), or the names of NSE's downloads (``ALIASES``), which
also write dates as ``01-Jan-2024`` and numbers with thousands separators (``3,035,963``), both read.
Timestamps are otherwise ISO-8601. One with an offset (``Z``, ``+05:30``) is that instant; one without, and
a plain date, is a wall time in the reader's ``zone``: UTC unless the command's ``--tz`` names another, such
as ``Asia/Kolkata`` for an NSE export in IST. A wall time that the zone's daylight-saving change skips or
repeats is a bad row, since it is not one instant.
Parquet columns may be typed, and the time may be the index (as ``DataFrame.to_parquet`` of a Yahoo download
keeps it) when the index is named like a time column.

A row is valid when every value parses, prices are > 0, ``high >= max(open, close)``,
``low <= min(open, close)``, ``volume >= 0`` and its timestamp is after the previous row's. The bad row
nearest the top of the file is reported as ``BarFileError`` with the file, the line (CSV; the header is
line 1) or row (Parquet, 1-based) and the column, plus how many other rows are bad. Rows are never sorted,
deduplicated or filtered; only a file whose times all run backwards (newest first, as NSE lists them) is
read in reverse.
A missing or unreadable file (not UTF-8, no permission) is a ``BarFileError`` too, naming the file.

A CSV file is read by pyarrow's reader (about a second for a million rows, checks included) when it is
plain: one header line, every row of its width, no quoted line breaks, every column UTF-8, every value in a
form both readers parse alike. Anything else, and any file with a bad row, is read again by the
line-tracking reader, which gives the message; the two give the same frame for every file the first accepts
(tests/unit/marketdata/test_files.py).
"""

from __future__ import annotations

import csv
import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, tzinfo
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from shared.contracts.subjects import InvalidSymbolError, normalize_symbol
from shared.zones import not_a_zone, zone_named

COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")
PRICES = ("open", "high", "low", "close")
_TIME_ALIASES = ("timestamp", "date", "datetime")
#: The header names each column may have (compared in lower case, runs of spaces as one): ours, Yahoo's and
#: the brokers', and those of NSE's downloads (a stock's "Security-wise Price Volume" data: ``Open Price``,
#: ``Total Traded Quantity``; an index's historical data: ``Shares Traded``).
ALIASES: dict[str, tuple[str, ...]] = {
    "timestamp": _TIME_ALIASES,
    "open": ("open", "open price"),
    "high": ("high", "high price"),
    "low": ("low", "low price"),
    "close": ("close", "close price"),
    "volume": ("volume", "total traded quantity", "shares traded"),
}
SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
_HEADER_HINT = (
    "expected header timestamp,open,high,low,close,volume or Date,Open,High,Low,Close,Volume (or NSE's "
    "Date,Open Price,High Price,Low Price,Close Price,Total Traded Quantity)"
)
#: A number written with thousands separators, Western (``3,035,963.50``) or Indian (``30,35,963``).
_GROUPED = re.compile(r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d{1,2}(?:,\d{2})*,\d{3})(?:\.\d*)?")
#: NSE's date form, ``01-Jan-2024`` (any case): a plain date, like an ISO one.
_DAY_MON_YEAR = re.compile(r"\d{1,2}-[A-Za-z]{3}-\d{4}")
#: A timestamp text that ends in an offset after its time of day (``T09:15Z``, ``09:15:00+05:30``,
#: ``+0530``, ``+05``); a plain date's ``-02`` is not one. pandas reads ``Z`` and ``T`` in capitals only, and
#: so does this.
_OFFSET = re.compile(r"[T ]\d.*(?:Z|[+-]\d{2}(?::?\d{2})?)\s*$")


#: ``--help`` of the ``--tz`` option of the commands that read bar files.
TZ_HELP = "Time zone of the file's times without an offset and of plain dates, e.g. Asia/Kolkata"


class BadZoneError(ValueError):
    """A ``--tz`` that names no time zone."""


def time_zone(name: str) -> tzinfo:
    """The zone a ``--tz`` names: an IANA name such as ``Asia/Kolkata``, or ``UTC``; else ``BadZoneError``."""
    zone = zone_named(name)
    if zone is None:
        raise BadZoneError(not_a_zone("--tz", name))
    return zone


class InputError(ValueError):
    """Bar files and the symbols given for them that do not go together."""


def input_symbols(paths: Sequence[Path], symbols: Sequence[str] | None) -> list[str]:
    """The symbol of each bar file (one symbol per file): ``symbols`` in order, one per file, or without them
    the file's ``Symbol`` column (as NSE's downloads have), else its name (``infy.csv`` is INFY; NSE's
    ``Quote-Equity-INFY-EQ-<from>-to-<to>.csv`` is INFY too, ``NSE_QUOTE_NAME``). A column
    value that is not a symbol (``INFY.NS``) leaves the name. ``InputError`` for a count that does not match,
    a file with no symbol, or two files of one symbol; ``InvalidSymbolError`` for a bad ``symbols`` value.
    (A file whose column holds several symbols is ``load_bar_file``'s to refuse.)"""
    if symbols and len(symbols) != len(paths):
        raise InputError(
            f"{len(paths)} --input files but {len(symbols)} --symbol values; give one per file, or none"
        )
    found: dict[str, Path] = {}
    for index, path in enumerate(paths):
        if symbols:
            symbol = normalize_symbol(symbols[index])
        else:
            column, inside = symbols_in_file(path)  # several: load_bar_file refuses the file
            symbol = _symbol_of(path, column, inside[0] if len(inside) == 1 else None)
        if symbol in found:
            raise InputError(f"{path}: symbol {symbol} is given by {found[symbol]} too; one file per symbol")
        found[symbol] = path
    return list(found)


#: A file's symbols named in ``input_symbols``' refusal of a file of several.
SYMBOLS_SHOWN = 5


#: The name of NSE's "Historical Data" download of a stock (it has no Symbol column):
#: ``Quote-Equity-INFY-EQ-01-01-2024-to-31-12-2024.csv``, perhaps with a browser's `` (1)``; the symbol may
#: hold hyphens (``BAJAJ-AUTO``), the dates anchor the end.
NSE_QUOTE_NAME = re.compile(
    r"^Quote-Equity-(.+)-[A-Z0-9]{1,2}-\d{2}-\d{2}-\d{4}-to-\d{2}-\d{2}-\d{4}(?:\s*\(\d+\))?$", re.IGNORECASE
)


def _symbol_of(path: Path, column: str, value: str | None) -> str:
    """The symbol of ``path`` without ``--symbol``: ``value`` of its symbol column, else the file's name."""
    if value is not None:
        try:
            return normalize_symbol(value)
        except InvalidSymbolError:
            pass  # such as INFY.NS: the file's name may still be the symbol
    named = NSE_QUOTE_NAME.match(path.stem)
    try:
        return normalize_symbol(named.group(1) if named else path.stem)
    except InvalidSymbolError as exc:
        inside = f" nor is its {column} column's {value!r}" if value is not None else ""
        raise InputError(
            f"{path}: no --symbol given, and the file's name is not a symbol{inside}: {exc}"
        ) from None


def symbols_in_file(path: Path) -> tuple[str, list[str]]:
    """The header of ``path``'s symbol column (``Symbol``, any case and spacing) and its distinct non-blank
    values in the order met (at most ``SYMBOLS_SHOWN + 1``); ``("", [])`` when the file has no such column
    or cannot be read so (``load_bar_file`` then names what is wrong with it). Read once per version of
    the file: ``input_symbols`` and then ``load_bar_file`` both ask."""
    try:
        stat = path.stat()
    except OSError:
        return "", []
    column, values = _symbols_read(path, stat.st_mtime_ns, stat.st_size)
    return column, list(values)


@functools.lru_cache(maxsize=32)
def _symbols_read(path: Path, _mtime_ns: int, _size: int) -> tuple[str, tuple[str, ...]]:
    """``symbols_in_file`` of one version of ``path`` (its time and size are the cache's key)."""
    try:
        if SUFFIXES.get(path.suffix.lower()) == "parquet":
            names = pq.read_schema(path).names
            column = next((n for n in names if " ".join(str(n).split()).lower() == "symbol"), None)
            if column is None:
                return "", ()
            values = pq.read_table(path, columns=[column]).column(0)
        else:
            with path.open(newline="", encoding="utf-8-sig") as fh:
                first = next((line for line in fh if line.strip()), None)
            header = next(csv.reader([first]), []) if first is not None else []
            matches = [h for h in header if " ".join(h.split()).lower() == "symbol"]
            if len(matches) != 1 or header.count(matches[0]) != 1:
                return "", ()
            column = matches[0]
            options = pa_csv.ConvertOptions(include_columns=[column], column_types={column: pa.string()})
            values = pa_csv.read_csv(path, convert_options=options).column(0)
    except (OSError, UnicodeDecodeError, pa.ArrowException, ValueError):
        return "", ()
    distinct: list[str] = []
    for value in pc.unique(pc.utf8_trim_whitespace(pc.cast(values, pa.string()))).to_pylist():
        if value:
            distinct.append(value)
            if len(distinct) > SYMBOLS_SHOWN:
                break
    return str(column).strip(), tuple(distinct)


@dataclass(frozen=True)
class BarFileError(ValueError):
    """A bar file that cannot be used, with where the (first) problem is."""

    path: str
    line: int
    column: str
    problem: str
    unit: str = "line"
    more: int = 0

    def __str__(self) -> str:
        if self.unit == "file":  # the file as a whole: no line or column to name
            return f"{self.path}: {self.problem}"
        column = f", column {self.column!r}" if self.column != "-" else ""  # "-": the line, not one column
        where = f"{self.path}: {self.unit} {self.line}{column}: {self.problem}"
        return where + (f" (and {self.more} more bad row(s))" if self.more else "")


@dataclass(frozen=True)
class _Raw:
    """Columns as read, with the header name of each canonical column and each row's line number."""

    path: str
    columns: dict[str, pd.Series]
    names: dict[str, str]
    lines: np.ndarray
    unit: str


def load_bar_file(path: Path, zone: tzinfo = UTC) -> pd.DataFrame:
    """Read and validate ``path``; returns columns ``timestamp`` (UTC), open, high, low, close, volume.
    A timestamp without an offset is a wall time in ``zone``."""
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise BarFileError(str(path), 0, "-", "unknown file type: use .csv, .parquet or .pq", unit="file")
    if not path.is_file():
        raise BarFileError(str(path), 0, "-", "no such file", unit="file")
    column, inside = symbols_in_file(path)
    if len(inside) > 1:
        shown = ", ".join(inside[:SYMBOLS_SHOWN]) + (", ..." if len(inside) > SYMBOLS_SHOWN else "")
        problem = (
            f"its {column} column holds several symbols ({shown}); a bar file holds one symbol: split it"
        )
        raise BarFileError(str(path), 0, column, problem + " into a file per symbol", unit="file")
    try:
        if kind == "csv":
            frame = _csv_fast(path, zone)
            if frame is not None:
                return frame
        raw = _read_csv(path) if kind == "csv" else _read_parquet(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise BarFileError(str(path), 0, "-", f"cannot read: {exc}", unit="file") from None
    return validate(raw, zone)


# -- reading --------------------------------------------------------------------------------------------
def _canonical(header: list[str], path: str, header_line: int, unit: str) -> dict[str, int]:
    lowered = [" ".join(h.split()).lower() for h in header]
    found: dict[str, int] = {}
    for name in COLUMNS:
        aliases = ALIASES[name]
        index = next((i for i, h in enumerate(lowered) if h in aliases), None)
        if index is None:
            raise BarFileError(path, header_line, name, f"missing column; {_HEADER_HINT}", unit=unit)
        found[name] = index
    return found


def _csv_fast(path: Path, zone: tzinfo) -> pd.DataFrame | None:
    """The validated frame of a plain CSV file read by pyarrow, or None for ``_read_csv`` to read it (a file
    this reader cannot take as it is, or one with a problem to name)."""
    with path.open(newline="", encoding="utf-8-sig") as fh:
        first = next((line for line in fh if line.strip()), None)
    if first is None:
        return None
    header = next(csv.reader([first]), [])
    if len(set(header)) != len(header):
        return None
    try:
        index = _canonical(header, str(path), 1, "line")
        wanted = {name: header[i] for name, i in index.items()}
        table = pa_csv.read_csv(
            path,
            parse_options=pa_csv.ParseOptions(newlines_in_values=False),
            convert_options=pa_csv.ConvertOptions(
                column_types={h: pa.string() for h in header},  # every column: each is checked UTF-8
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
        if table.num_rows == 0:
            return None
        times, _ = _times_of_text(table.column(wanted["timestamp"]).to_pandas(), zone)
        columns: dict[str, pd.Series] = {"timestamp": times}
        for name in (*PRICES, "volume"):
            values = pc.cast(table.column(wanted[name]), pa.float64()).to_numpy()
            columns[name] = pd.Series(values, dtype="float64")
        raw = _Raw(str(path), columns, wanted, np.arange(2, table.num_rows + 2), "line")
        return validate(raw, zone)
    except (BarFileError, pa.ArrowException, ValueError):
        return None


def _read_csv(path: Path) -> _Raw:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header: list[str] = []
        header_line = 1
        rows: list[list[str]] = []
        lines: list[int] = []
        try:
            for row in reader:
                if not (row and row[0].strip()) and not any(cell.strip() for cell in row):
                    continue  # a blank line (the first test settles almost every row at once)
                if not header:
                    header, header_line = row, reader.line_num
                    continue
                if len(row) != len(header):
                    _bad_width(str(path), reader.line_num, header, row)
                rows.append(row)
                lines.append(reader.line_num)
        except csv.Error as exc:  # e.g. a field over the csv module's size limit
            raise BarFileError(str(path), reader.line_num, "-", f"not readable as CSV: {exc}") from None
    if not header:
        raise BarFileError(str(path), 1, "-", f"empty file; {_HEADER_HINT}")
    index = _canonical(header, str(path), header_line, "line")
    if not rows:
        raise BarFileError(str(path), header_line + 1, "-", "no data rows")
    columns = {name: pd.Series([r[i] for r in rows], dtype=object) for name, i in index.items()}
    names = {name: header[i].strip() for name, i in index.items()}
    return _Raw(str(path), columns, names, np.asarray(lines), "line")


def _bad_width(path: str, line: int, header: list[str], row: list[str]) -> None:
    if len(row) < len(header):
        column = header[len(row)].strip()
        problem = f"missing value: expected {len(header)} fields, found {len(row)}"
    else:
        column = f"#{len(header) + 1} (no header)"
        problem = f"too many values: expected {len(header)} fields, found {len(row)}"
    raise BarFileError(path, line, column, problem)


def _read_parquet(path: Path) -> _Raw:
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise BarFileError(str(path), 0, "-", f"not a readable Parquet file: {exc}", unit="file") from None
    if frame.index.name is not None and str(frame.index.name).strip().lower() in _TIME_ALIASES:
        frame = frame.reset_index()
    header = [str(c) for c in frame.columns]
    index = _canonical(header, str(path), 0, "row")
    if frame.empty:
        raise BarFileError(str(path), 1, "-", "no data rows", unit="row")
    columns = {name: frame.iloc[:, i].reset_index(drop=True) for name, i in index.items()}
    names = {name: header[i] for name, i in index.items()}
    return _Raw(str(path), columns, names, np.arange(1, len(frame) + 1), "row")


# -- validating -----------------------------------------------------------------------------------------
def _parse_numbers(series: pd.Series) -> pd.Series:
    if series.dtype == object or pd.api.types.is_string_dtype(series):
        series = series.astype(str).str.strip()
        if series.str.contains(",", regex=False).any():
            grouped = series.str.fullmatch(_GROUPED)
            series = series.where(~grouped, series.str.replace(",", "", regex=False))
    return pd.to_numeric(series, errors="coerce").astype("float64") + 0.0  # -0.0 is 0.0


def _parse_times(series: pd.Series, zone: tzinfo) -> tuple[pd.Series, np.ndarray]:
    """The times in UTC (NaT where a value is no time), and the rows whose wall time is not one instant."""
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        return series.dt.tz_convert("UTC"), np.zeros(len(series), dtype=bool)
    if pd.api.types.is_datetime64_dtype(series):
        local = series.dt.tz_localize(zone, ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC")
        return local, (local.isna() & series.notna()).to_numpy(dtype=bool)
    return _times_of_text(series.astype(str).str.strip(), zone)


def _times_of_text(text: pd.Series, zone: tzinfo) -> tuple[pd.Series, np.ndarray]:
    times = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")  # no offset: read as UTC
    missing = times.isna().to_numpy(dtype=bool)
    if missing.any():  # NSE's 01-Jan-2024, among the values that are not ISO-8601
        nse = np.zeros(len(times), dtype=bool)
        nse[missing] = text[missing].astype(str).str.fullmatch(_DAY_MON_YEAR).to_numpy(dtype=bool)
        if nse.any():
            times = times.copy()
            times[nse] = pd.to_datetime(text[nse], utc=True, errors="coerce", format="%d-%b-%Y")
    unplaced = np.zeros(len(times), dtype=bool)
    if zone is UTC:
        return times, unplaced
    naive = (times.notna() & ~text.astype(str).str.contains(_OFFSET)).to_numpy(dtype=bool)
    if naive.any():
        wall = times[naive].dt.tz_localize(None)
        local = wall.dt.tz_localize(zone, ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC")
        times = times.copy()
        times[naive] = local
        unplaced[naive] = local.isna().to_numpy(dtype=bool)
    return times, unplaced


Check = tuple[str, np.ndarray, Callable[[int], str]]


def _checks(
    raw: _Raw, ts: pd.Series, unplaced: np.ndarray, zone: tzinfo, num: dict[str, pd.Series]
) -> list[Check]:
    def shown(name: str) -> Callable[[int], str]:
        what = "timestamp" if name == "timestamp" else "number"
        return lambda i: f"not a {what}: {raw.columns[name].iloc[i]!r}"

    def price_problem(values: np.ndarray) -> Callable[[int], str]:
        return lambda i: f"price must be > 0, got {values[i]:g}"

    def order_problem(i: int) -> str:
        return f"timestamp {ts.iloc[i].isoformat()} is not after {prev.iloc[i].isoformat()}"

    def unplaced_problem(i: int) -> str:
        return (
            f"{str(raw.columns['timestamp'].iloc[i])!r} is not one instant in {zone} (a daylight-saving "
            "change skips or repeats it); write it with its offset"
        )

    checks: list[Check] = [
        ("timestamp", ts.isna().to_numpy() & ~unplaced, shown("timestamp")),
        ("timestamp", unplaced, unplaced_problem),
    ]
    for name in (*PRICES, "volume"):
        values = num[name].to_numpy()
        checks.append((name, ~np.isfinite(values), shown(name)))
    for name in PRICES:
        values = num[name].to_numpy()
        checks.append((name, values <= 0, price_problem(values)))
    vol = num["volume"].to_numpy()
    checks.append(("volume", vol < 0, lambda i: f"volume must be >= 0, got {vol[i]:g}"))
    o, h, lo, c = (num[n].to_numpy() for n in PRICES)
    top, bottom = np.maximum(o, c), np.minimum(o, c)
    checks.append(("high", h < top, lambda i: f"high {h[i]:g} is below max(open, close) {top[i]:g}"))
    checks.append(("low", lo > bottom, lambda i: f"low {lo[i]:g} is above min(open, close) {bottom[i]:g}"))
    prev = ts.shift(1)
    order = (ts <= prev).fillna(False).to_numpy(dtype=bool)
    checks.append(("timestamp", order, order_problem))
    return checks


def _newest_first(ts: pd.Series) -> bool:
    """Every time of the file (those that parse) earlier than the one before: a download listed newest
    first, as NSE's are. One time out of that order, and the file is read as it is (and refused)."""
    known = ts.dropna()
    return len(known) >= 2 and bool((known.diff().iloc[1:] < pd.Timedelta(0)).all())


def _reversed(raw: _Raw) -> _Raw:
    columns = {name: values.iloc[::-1].reset_index(drop=True) for name, values in raw.columns.items()}
    return _Raw(raw.path, columns, raw.names, raw.lines[::-1].copy(), raw.unit)


def validate(raw: _Raw, zone: tzinfo = UTC) -> pd.DataFrame:
    ts, unplaced = _parse_times(raw.columns["timestamp"], zone)
    if _newest_first(ts):  # oldest first from here on; each row keeps its own line number
        raw = _reversed(raw)
        ts, unplaced = ts.iloc[::-1].reset_index(drop=True), unplaced[::-1].copy()
    num = {name: _parse_numbers(raw.columns[name]) for name in (*PRICES, "volume")}
    with np.errstate(invalid="ignore"):
        checks = _checks(raw, ts, unplaced, zone, num)
    bad = np.zeros(len(ts), dtype=bool)
    first: tuple[int, str, str] | None = None
    for column, mask, message in checks:
        mask = np.asarray(mask, dtype=bool)
        bad |= mask
        hits = np.flatnonzero(mask)
        if hits.size:  # the bad row nearest the top of the file (the last one of a file read in reverse)
            top = int(hits[np.argmin(raw.lines[hits])])
            if first is None or raw.lines[top] < raw.lines[first[0]]:
                first = (top, column, message(top))
    if first is not None:
        row, column, problem = first
        more = int(bad.sum()) - 1
        line = int(raw.lines[row])
        raise BarFileError(raw.path, line, raw.names[column], problem, unit=raw.unit, more=more)
    frame = pd.DataFrame({"timestamp": ts, **num})
    return frame.reset_index(drop=True)
