"""Analytics adapters: the DuckDB store and the offline bar-file reader."""
