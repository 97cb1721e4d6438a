"""Lockout: N failed logins for a user or from a client address within the window lock it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class LockoutPolicy:
    max_failures: int = 5
    window: timedelta = timedelta(minutes=15)


def is_locked(failures: Sequence[datetime], now: datetime, policy: LockoutPolicy) -> bool:
    """``failures`` are the failure times of one user or one address (any order)."""
    recent = [t for t in failures if now - policy.window < t <= now]
    return len(recent) >= policy.max_failures
