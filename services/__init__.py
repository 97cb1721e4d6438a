"""Bastion services: each owns its DuckDB file and talks to the others only over NATS."""
