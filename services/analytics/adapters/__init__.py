"""Analytics adapters: the DuckDB store and the recompute request endpoint (bar files: shared.barfiles)."""
