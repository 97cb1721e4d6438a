"""Pure risk and execution rules: no NATS, no DuckDB, no wall clock. A backtester drives it in one process."""
