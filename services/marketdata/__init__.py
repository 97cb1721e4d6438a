"""The marketdata service."""
