"""Adapters of the strategy service: the DuckDB store."""
