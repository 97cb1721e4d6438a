"""pydantic's validation errors as text a user can read."""

from __future__ import annotations

from pydantic import ValidationError


def readable(exc: ValidationError, whole: str = "value") -> str:
    """One line, ``field: message; ...``, without pydantic's links and input dumps; an error about the
    whole input (no field) is named ``whole``."""
    return "; ".join(f"{'.'.join(str(x) for x in e['loc']) or whole}: {e['msg']}" for e in exc.errors())
