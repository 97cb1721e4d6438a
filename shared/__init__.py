"""Code shared by every Bastion service: event contracts and the NATS/DuckDB runtime."""
