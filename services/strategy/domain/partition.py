"""Which worker runs which symbol: rendezvous (highest random weight) hashing over the live members.

Every worker computes ``owner(symbol, members)`` from the same sorted member list and gets the same answer
with no coordinator. When a member joins or leaves, only the symbols it wins or held move; the others stay
where they are. The weight is SHA-256 of ``member|symbol`` so it is the same in every process and Python
version (``hash()`` is salted per process).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def weight(member: str, symbol: str) -> int:
    digest = hashlib.sha256(f"{member}|{symbol}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def owner(symbol: str, members: Iterable[str]) -> str | None:
    """The member that runs ``symbol`` (ties broken by name), or None when there is no member."""
    best: tuple[int, str] | None = None
    for member in sorted(set(members)):
        candidate = (weight(member, symbol), member)
        if best is None or candidate > best:
            best = candidate
    return best[1] if best is not None else None


def assign(symbols: Iterable[str], members: Iterable[str]) -> dict[str, list[str]]:
    """Every member with the sorted symbols it owns (members owning nothing get an empty list)."""
    names = sorted(set(members))
    out: dict[str, list[str]] = {m: [] for m in names}
    for symbol in sorted(set(symbols)):
        winner = owner(symbol, names)
        if winner is not None:
            out[winner].append(symbol)
    return out
