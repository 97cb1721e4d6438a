"""The execution service's adapters: DuckDB store, session verifiers, broker port."""
