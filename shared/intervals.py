"""Bar intervals (``1m``, ``5m``, ``1h``, ``1d``, ``1w``) as durations, and the interval of bar files."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

_INTERVAL_RE = re.compile(r"^([1-9][0-9]{0,3})([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class BadIntervalError(ValueError):
    """An interval that is not a number and a unit."""


def interval_seconds(interval: str) -> int:
    """Seconds in ``interval``, or ``BadIntervalError``."""
    match = _INTERVAL_RE.fullmatch(interval.strip())
    if match is None:
        raise BadIntervalError(
            f"invalid interval {interval!r}: use a number and a unit s, m, h, d or w (e.g. 1m, 5m, 1h, 1d)"
        )
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


#: Units of an interval's name, largest first.
_UNITS = sorted(_UNIT_SECONDS.items(), key=lambda unit: unit[1], reverse=True)
#: What ``--interval`` of a command reading bar files is when not given.
INTERVAL_HELP = "(default: the files' bar spacing; 1d for a single bar)"
#: The interval of a file without two bars to space (the default before it was inferred).
SINGLE_BAR_INTERVAL = "1d"


def interval_notice(interval: str, *, spaced: bool) -> str:
    """What a command reading bar files without ``--interval`` says of the one it took: the bars' spacing,
    or (``spaced`` false: no file had two bars) the single bar's default."""
    why = "the bars' spacing" if spaced else "a single bar has no spacing to go by, so the default"
    return f"interval {interval}: {why} (--interval gives another)"


def sparser_than(files: Sequence[tuple[str, np.ndarray]], interval: str) -> str | None:
    """A warning when a given ``interval`` is half or less of the spacing of a file's bars (name, int64
    UTC nanoseconds, ascending): 5m bars given ``--interval 1m`` are taken as 1m bars, which nothing can
    refuse (their gaps could be missing minutes) but which is most likely a slip. None when none is."""
    seconds = interval_seconds(interval)
    for name, times in files:
        spacing = bar_spacing(times)
        if spacing is not None and spacing >= 2 * seconds:
            apart = _apart(spacing)
            return (
                f"warning: {name}: --interval {interval}, but its bars are mostly {apart} apart; they are"
                f" taken as {interval} bars (the indicators count bars, and a symbol keeps one interval)."
                f" If they are {apart} bars, give --interval {apart}"
            )
    return None


class SpacingError(BadIntervalError):
    """Bar files whose bars are closer together than their interval, or spaced differently."""


def interval_name(seconds: int) -> str:
    """``60`` -> ``1m``, ``86400`` -> ``1d``: the largest unit that divides ``seconds``."""
    if seconds < 1:
        raise SpacingError("bars less than a second apart: no interval is that short; give --interval")
    for unit, size in _UNITS:
        if seconds % size == 0 and seconds // size <= 9999:
            return f"{seconds // size}{unit}"
    raise SpacingError(f"bars {seconds:,}s apart have no interval (at most 9999 of a unit); give --interval")


def bar_spacing(times_ns: np.ndarray) -> int | None:
    """The most common gap between consecutive bar times (int64 nanoseconds, ascending) in whole seconds,
    the smallest of equally common ones; None for fewer than two bars."""
    if len(times_ns) < 2:
        return None
    gaps, counts = np.unique(np.diff(times_ns) // 1_000_000_000, return_counts=True)
    return int(gaps[np.argmax(counts)])


def files_interval(files: Sequence[tuple[str, pd.Series]], given: str | None) -> str:
    """The interval of bar files (name, validated ``timestamp`` column): ``given``, else the bars' spacing
    (``bar_spacing``; the same in every file). Either way no two bars of a file may be closer than half
    of it. That leaves room for bars stamped unevenly (daily bars at different times of day, local
    midnights across a daylight-saving change, a second's jitter), and refuses a wrong interval, which puts
    two or more bars in one: a 1m file replayed as 1d bars is an error, not 1d bars."""
    times = [(name, pd.DatetimeIndex(ts).as_unit("ns").asi8) for name, ts in files]
    if given is None:
        spacings = {name: s for name, t in times if (s := bar_spacing(t)) is not None}
        names = {name: interval_name(s) for name, s in spacings.items()}
        if len(set(names.values())) > 1:
            listed = ", ".join(f"{name}: {ivl}" for name, ivl in names.items())
            raise SpacingError(f"the files' bars are spaced differently ({listed}); give --interval")
        given = next(iter(names.values()), SINGLE_BAR_INTERVAL)
    seconds = interval_seconds(given)
    least = seconds / 2
    for name, t in times:
        gaps = np.diff(t) // 1_000_000_000
        close = np.flatnonzero(gaps < least)
        if close.size:
            i = int(close[0])
            a, b = (pd.Timestamp(t[j], tz="UTC").isoformat() for j in (i, i + 1))
            spacing = bar_spacing(t)
            mostly = f" (the file's bars are mostly {_apart(spacing)} apart)" if spacing is not None else ""
            more = f", and {close.size - 1:,} more pair(s) too" if close.size > 1 else ""
            raise SpacingError(
                f"{name}: bars at {a} and {b} are closer than half the interval {given}{more}{mostly}: give "
                "the file's --interval, or fix those bars"
            )
    return given.strip()


def _apart(seconds: int) -> str:
    if seconds < 1:
        return "less than a second"
    try:
        return interval_name(seconds)
    except SpacingError:
        return f"{seconds:,}s"
