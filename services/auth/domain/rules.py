"""Username, password and role rules.

Usernames: 3-32 characters of ``a-z 0-9 . _ -``, starting with a letter; input is lower-cased first.
Anything else (spaces, quotes, semicolons, SQL-looking names) is rejected. Passwords: 12-1024 characters.
"""

from __future__ import annotations

import re
from typing import Final, cast, get_args

from shared.contracts.auth import Role

ROLES: Final[tuple[str, ...]] = get_args(Role)
USERNAME_RE: Final = re.compile(r"[a-z][a-z0-9._-]{2,31}")
MIN_PASSWORD: Final = 12
MAX_PASSWORD: Final = 1024


class RuleError(ValueError):
    """Input that breaks a documented rule; the message is safe to show a user."""


def normalise_username(raw: str) -> str:
    name = raw.strip().lower()
    if not USERNAME_RE.fullmatch(name):
        raise RuleError(
            "username must be 3-32 characters of a-z, 0-9, '.', '_' or '-', starting with a letter"
        )
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise RuleError(f"password must be at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise RuleError(f"password must be at most {MAX_PASSWORD} characters")
    return password


def check_role(raw: str) -> Role:
    role = raw.strip().lower()
    if role not in ROLES:
        raise RuleError(f"role must be one of {', '.join(ROLES)}")
    return cast(Role, role)
