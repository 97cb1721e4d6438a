"""Pure market data logic: bar events, intervals, the synthetic generator (bar files: ``shared.barfiles``)."""
