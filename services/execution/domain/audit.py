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
    prev_hash, expected, count = GENESIS, 1, 0
    for row in rows:
        if row.seq != expected:
            return VerifyResult(
                False, count, prev_hash, expected, f"row {expected} is missing (found {row.seq})"
            )
        if row.prev_hash != prev_hash:
            return VerifyResult(False, count, prev_hash, row.seq, "prev_hash does not match the row before")
        if chain_hash(prev_hash, row.payload) != row.hash:
            return VerifyResult(False, count, prev_hash, row.seq, "hash does not match its payload")
        prev_hash, expected, count = row.hash, expected + 1, count + 1
    return VerifyResult(True, count, prev_hash)
