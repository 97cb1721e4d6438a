"""Recompute stored symbols from their bars: the one implementation behind ``bastion analytics update``,
run by the CLI on the file itself when the service is stopped, or by the running service on request
(``RecomputeInsights`` on ``ctl.v1.analytics.recompute``), since DuckDB lets only one process write the file.
"""

from __future__ import annotations

from collections.abc import Sequence

from services.analytics.adapters.store import AnalyticsStore
from services.analytics.domain.confluence import ConfluenceConfig
from services.analytics.domain.indicators import compute_all, rows_of
from services.analytics.domain.insight import BarRow, build_insight
from shared.contracts.analytics import InsightEvent


class UnknownSymbolError(LookupError):
    """The symbol has no stored bars; ``known`` lists the symbols that have."""

    def __init__(self, symbol: str, known: Sequence[str]) -> None:
        super().__init__(f"no stored bars for {symbol}; known: {', '.join(known) or 'none'}")
        self.symbol, self.known = symbol, tuple(known)


def recompute(
    bars: Sequence[BarRow], config: ConfluenceConfig
) -> tuple[list[dict[str, float | None]], list[InsightEvent]]:
    """Batch indicators and insights of one symbol's bars (the same payloads the live service publishes)."""
    values = rows_of(compute_all([b.high for b in bars], [b.low for b in bars], [b.close for b in bars]))
    return values, [build_insight(b, v, config) for b, v in zip(bars, values, strict=True)]


def symbols_to_update(store: AnalyticsStore, symbol: str | None) -> list[str]:
    """Every stored symbol, or just ``symbol`` (``UnknownSymbolError`` when it has no bars)."""
    known = store.symbols()
    if symbol is None:
        return known
    if symbol not in known:
        raise UnknownSymbolError(symbol, known)
    return [symbol]


def update_symbol(store: AnalyticsStore, symbol: str, config: ConfluenceConfig) -> list[InsightEvent]:
    """Recompute ``symbol`` from its stored bars and upsert its indicator values and insights."""
    bars = store.bars(symbol)
    values, insights = recompute(bars, config)
    store.upsert_derived(bars, values, insights)
    return insights
