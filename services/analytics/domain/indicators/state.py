"""Streaming state to and from plain JSON, so a service can checkpoint it and resume without a replay.

Every state class keeps only floats, ints, None, lists, tuples, deques and other state objects in its
``__slots__``; JSON keeps floats exactly (shortest round-trip repr), so a restored state continues bit for
bit like the original.
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any

from services.analytics.domain.indicators.bundle import IndicatorSet
from services.analytics.domain.indicators.core import Ema, Sma
from services.analytics.domain.indicators.momentum import Macd, Rsi
from services.analytics.domain.indicators.trend import Adx, Ehma
from services.analytics.domain.indicators.volatility import Atr, Bollinger

#: Bump when a state class changes its slots: older checkpoints are then ignored (the caller replays).
STATE_VERSION = 1
_CLASSES: dict[str, Any] = {
    cls.__name__: cls for cls in (IndicatorSet, Sma, Ema, Rsi, Macd, Atr, Bollinger, Adx, Ehma)
}


class StateFormatError(ValueError):
    """A checkpoint this code cannot restore (other version or shape)."""


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, deque):
        return {"deque": [_plain(v) for v in value], "maxlen": value.maxlen}
    if isinstance(value, tuple):
        return {"tuple": [_plain(v) for v in value]}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    name = type(value).__name__
    if _CLASSES.get(name) is not type(value):
        raise StateFormatError(f"cannot checkpoint a {name}")
    slots: tuple[str, ...] = _CLASSES[name].__slots__
    return {"class": name, "slots": {s: _plain(getattr(value, s)) for s in slots}}


def _restore(value: Any) -> Any:
    if isinstance(value, list):
        return [_restore(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "deque" in value:
        return deque((_restore(v) for v in value["deque"]), maxlen=value["maxlen"])
    if "tuple" in value:
        return tuple(_restore(v) for v in value["tuple"])
    cls = _CLASSES.get(value.get("class", ""))
    if cls is None:
        raise StateFormatError(f"unknown state class {value.get('class')!r}")
    obj = cls.__new__(cls)
    for slot in cls.__slots__:
        setattr(obj, slot, _restore(value["slots"][slot]))
    return obj


def dump_state(state: IndicatorSet) -> str:
    return json.dumps({"version": STATE_VERSION, "state": _plain(state)}, separators=(",", ":"))


def load_state(text: str) -> IndicatorSet:
    """The ``IndicatorSet`` of a ``dump_state`` text; ``StateFormatError`` when it cannot be restored."""
    try:
        data = json.loads(text)
        if data.get("version") != STATE_VERSION:
            raise StateFormatError(f"checkpoint version {data.get('version')} is not {STATE_VERSION}")
        state = _restore(data["state"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise StateFormatError(f"unreadable checkpoint: {exc}") from None
    if not isinstance(state, IndicatorSet):
        raise StateFormatError("checkpoint does not hold an IndicatorSet")
    return state
