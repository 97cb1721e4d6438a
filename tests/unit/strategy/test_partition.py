"""Rendezvous hashing: every worker computes the same split, each symbol has one owner, little moves."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from services.strategy.domain.partition import assign, owner

NAMES = st.lists(st.from_regex(r"[a-z0-9-]{1,8}", fullmatch=True), min_size=1, max_size=6, unique=True)
SYMBOLS = st.lists(st.from_regex(r"[A-Z][A-Z0-9&]{0,6}", fullmatch=True), max_size=60, unique=True)


@given(NAMES, SYMBOLS)
def test_every_symbol_has_exactly_one_owner_whatever_the_member_order(
    names: list[str], symbols: list[str]
) -> None:
    split = assign(symbols, names)
    assert sorted(s for owned in split.values() for s in owned) == sorted(symbols)
    assert assign(symbols, list(reversed(names))) == split


@given(NAMES, SYMBOLS, st.from_regex(r"[a-z0-9-]{1,8}", fullmatch=True))
def test_a_joining_worker_only_takes_symbols_and_never_moves_others(
    names: list[str], symbols: list[str], newcomer: str
) -> None:
    before = {s: owner(s, names) for s in symbols}
    after = {s: owner(s, [*names, newcomer]) for s in symbols}
    assert all(after[s] in (before[s], newcomer) for s in symbols)


@given(NAMES, SYMBOLS)
def test_a_leaving_worker_only_gives_away_its_own_symbols(names: list[str], symbols: list[str]) -> None:
    gone = names[0]
    before = {s: owner(s, names) for s in symbols}
    after = {s: owner(s, names[1:]) for s in symbols}
    assert all(after[s] == before[s] for s in symbols if before[s] != gone)


def test_symbols_spread_over_workers_and_nobody_owns_without_members() -> None:
    symbols = [f"S{i:03d}" for i in range(300)]
    counts = [len(v) for v in assign(symbols, ["a", "b", "c"]).values()]
    assert min(counts) > 60  # roughly a third each
    assert owner("INFY", []) is None
