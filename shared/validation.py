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
    errors = exc.errors()
    return "; ".join(_one(e, whole) for e in errors if not _counts_only_the_bad(e, errors))


def _counts_only_the_bad(error: ErrorDetails, errors: list[ErrorDetails]) -> bool:
    """A list's "at least N items" that only counts the valid ones, beside the errors of its bad items:
    one bad item of one made "should have at least 1 item after validation, not 0" too."""
    loc = tuple(error["loc"])
    return error["type"] == "too_short" and any(
        len(e["loc"]) > len(loc) and tuple(e["loc"][: len(loc)]) == loc for e in errors
    )


def _one(error: ErrorDetails, whole: str) -> str:
    message = str(error["msg"]).removeprefix(_PREFIX)
    where = ".".join(str(x) for x in error["loc"]) or whole
    return f"{where}: {message}" if where else message
