"""NATS side of the dashboard: the SNAPSHOTS watch and the auth client."""
