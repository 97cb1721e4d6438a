"""Time zones as users name them (``--tz``, ``BASTION_DASHBOARD_TZ``): an IANA name such as ``Asia/Kolkata``,
or ``UTC`` in any case. The lookup and the wording of a refusal are these, for every caller."""

from __future__ import annotations

from datetime import UTC, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def zone_named(name: str) -> tzinfo | None:
    """The zone ``name`` names (``UTC`` is ``datetime.UTC``), or None when it names none."""
    name = name.strip()
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def not_a_zone(what: str, name: str) -> str:
    """The one-line refusal of ``name`` given as ``what`` (``--tz``, ``BASTION_DASHBOARD_TZ``)."""
    return f"{what} {name!r}: not a time zone; use an IANA name such as Asia/Kolkata, or UTC"
