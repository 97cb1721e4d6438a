"""pydantic's validation errors as text a user can read."""

from __future__ import annotations

from pydantic import ValidationError
from pydantic_core import ErrorDetails

#: what pydantic puts before the text of a ``ValueError`` raised by a validator
_PREFIX = "Value error, "


def readable(exc: ValidationError, whole: str = "value") -> str:
    """One line, ``field: message; ...``, without pydantic's links, input dumps and the "Value error, "
    before a validator's own message; an error about the whole input (no field) is named ``whole``, or is
    its message alone when ``whole`` is empty."""
    return "; ".join(_one(e, whole) for e in exc.errors())


def _one(error: ErrorDetails, whole: str) -> str:
    message = str(error["msg"]).removeprefix(_PREFIX)
    where = ".".join(str(x) for x in error["loc"]) or whole
    return f"{where}: {message}" if where else message
