"""PBKDF2-SHA256 password hashing (libpass) with transparent re-hash when the configured cost rises."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from passlib.context import CryptContext

DEFAULT_ROUNDS: Final = 600_000


@dataclass
class Hasher:
    rounds: int = DEFAULT_ROUNDS
    _ctx: CryptContext = field(init=False, repr=False)
    _dummy: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._ctx = CryptContext(schemes=["pbkdf2_sha256"], pbkdf2_sha256__rounds=self.rounds)
        self._dummy = self._ctx.hash("dummy-password-for-unknown-users")

    def hash(self, password: str) -> str:
        return str(self._ctx.hash(password))

    def verify(self, password: str, stored: str | None) -> tuple[bool, str | None]:
        """Check ``password``; returns (ok, new hash to store or None).

        With ``stored`` None (unknown user) a dummy hash is verified so the time taken is the same.
        """
        if stored is None:
            self._ctx.verify(password, self._dummy)
            return False, None
        ok, new_hash = self._ctx.verify_and_update(password, stored)
        return bool(ok), (str(new_hash) if ok and new_hash else None)

    def needs_update(self, stored: str) -> bool:
        return bool(self._ctx.needs_update(stored))
