"""The execution service's audit chain as published on ``audit.v1.exec`` (AUDIT stream)."""

from __future__ import annotations

import uuid
from typing import ClassVar

from pydantic import Field

from shared.contracts.envelope import Event


class AuditRecord(Event):
    """One hash-chained audit row: ``hash = sha256(prev_hash + "\\n" + payload)``; see
    services/execution/domain/audit.py for the chain rule and `bastion audit verify`."""

    SCHEMA: ClassVar[str] = "bastion.exec.audit"
    VERSION: ClassVar[str] = "1.0"

    seq: int = Field(ge=1)
    kind: str = Field(max_length=64, description="schema of the audited event")
    ref_id: uuid.UUID = Field(description="event_id of the audited event (command_id for commands)")
    payload: str = Field(description="canonical JSON of the audited event")
    prev_hash: str = Field(min_length=64, max_length=64)
    hash: str = Field(min_length=64, max_length=64)

    def subject(self) -> str:
        return "audit.v1.exec"
