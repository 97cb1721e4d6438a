"""Pure market data logic: bar files, intervals, the synthetic generator. No I/O besides reading a file."""
