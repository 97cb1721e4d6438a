"""The audit chain: every decision, command, order, fill and state change as one hash-chained row.

Row ``n`` stores its canonical payload (sorted-key compact JSON) and
``hash_n = sha256(hash_{n-1} + "\\n" + payload_n)`` with ``hash_0 = GENESIS``. Editing a payload, a hash,
or deleting or reordering a row breaks the chain at that row; ``verify_chain`` names the first bad row.
Session tokens never enter the chain: they are replaced by their sha256 before hashing.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from shared.contracts.audit import AuditRecord
from shared.contracts.risk import RiskCommand

GENESIS = "0" * 64
AUDIT_SUBJECT = "audit.v1.exec"
__all__ = ["AuditRecord"]


@dataclass(frozen=True)
class AuditRow:
    seq: int
    kind: str
    ref_id: uuid.UUID
    payload: str
    prev_hash: str
    hash: str


def canonical(data: dict[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)


def chain_hash(prev_hash: str, payload: str) -> str:
    return hashlib.sha256(f"{prev_hash}\n{payload}".encode()).hexdigest()


def redacted_command(command: RiskCommand, outcome: str, username: str | None) -> dict[str, Any]:
    """A command as audited: the token replaced by its sha256, plus who sent it and what happened."""
    data = command.model_dump(mode="json", by_alias=True)
    data["session_token"] = "sha256:" + hashlib.sha256(command.session_token.encode()).hexdigest()
    data["outcome"] = outcome
    data["username"] = username
    return data


def next_row(prev: AuditRow | None, kind: str, ref_id: uuid.UUID, data: dict[str, Any]) -> AuditRow:
    payload = canonical(data)
    prev_hash = prev.hash if prev else GENESIS
    seq = prev.seq + 1 if prev else 1
    return AuditRow(seq, kind, ref_id, payload, prev_hash, chain_hash(prev_hash, payload))


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    rows: int
    head: str
    bad_seq: int | None = None
    problem: str = ""


def verify_chain(rows: Iterable[AuditRow]) -> VerifyResult:
    """Walk ``rows`` in seq order; the first break is reported with its row number and what is wrong."""
    check = ChainCheck()
    for row in rows:
        if check.take(row) is not None:
            break
    return check.result()


class ChainCheck:
    """``verify_chain`` one row at a time, for rows that arrive in batches (the AUDIT stream's copy of the
    chain, too large to hold at once). Stops at the first break; ``result()`` says where.

    ``first``/``prev_hash``: where the rows start when not at row 1 (a stream whose age limit dropped the
    oldest ones): the first row must then be ``first`` and chain onto ``prev_hash``, its own ``prev_hash``
    when None. ``repeats``: a row equal to one of the last ``repeats`` rows already taken (a republish after
    a crash, outside the stream's dedupe window) is skipped, and any other row going back is a break; by
    default (0) every row going back is a missing row."""

    def __init__(self, first: int = 1, prev_hash: str | None = GENESIS, repeats: int = 0) -> None:
        self.first = first
        self.skipped = 0  # repeated rows skipped
        self._expected, self._prev_hash, self._count = first, prev_hash, 0
        self._recent: dict[int, tuple[str, str]] = {}  # seq -> (prev_hash, hash) of the last rows taken
        self._repeats = repeats
        self._broken: VerifyResult | None = None

    def take(self, row: AuditRow) -> VerifyResult | None:
        """Check the next row; the break it is (kept for ``result``), or None."""
        if self._broken is not None:
            return self._broken
        if self._prev_hash is None:
            self._prev_hash = row.prev_hash  # anchored on the first row the rows start with
        prev_hash, expected = self._prev_hash, self._expected
        if row.seq < expected and self._repeats:
            seen = self._recent.get(row.seq)
            if seen == (row.prev_hash, row.hash) and chain_hash(row.prev_hash, row.payload) == row.hash:
                self.skipped += 1
                return None  # the same row again
            self._broken = VerifyResult(
                False,
                self._count,
                prev_hash,
                row.seq,
                f"row {row.seq} appears again after row {expected - 1}, not as the same row",
            )
        elif row.seq != expected:
            self._broken = VerifyResult(
                False, self._count, prev_hash, expected, f"row {expected} is missing (found {row.seq})"
            )
        elif row.prev_hash != prev_hash:
            self._broken = VerifyResult(
                False, self._count, prev_hash, row.seq, "prev_hash does not match the row before"
            )
        elif chain_hash(prev_hash, row.payload) != row.hash:
            self._broken = VerifyResult(
                False, self._count, prev_hash, row.seq, "hash does not match its payload"
            )
        if self._broken is not None:
            return self._broken
        self._prev_hash, self._expected, self._count = row.hash, expected + 1, self._count + 1
        if self._repeats:
            self._recent[row.seq] = (row.prev_hash, row.hash)
            self._recent.pop(row.seq - self._repeats, None)
        return None

    @property
    def last(self) -> int:
        """The last row taken (``first - 1`` before any)."""
        return self._expected - 1

    def result(self) -> VerifyResult:
        if self._broken is not None:
            return self._broken
        return VerifyResult(True, self._count, self._prev_hash or GENESIS)
