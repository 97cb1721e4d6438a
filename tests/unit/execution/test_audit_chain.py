"""The hash chain: any edited, deleted or reordered row is found and named; tokens never enter it."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from services.execution.domain.audit import AuditRow, canonical, next_row, redacted_command, verify_chain
from tests.unit.execution.helpers import command


def chain(n: int) -> list[AuditRow]:
    rows: list[AuditRow] = []
    for i in range(n):
        rows.append(next_row(rows[-1] if rows else None, "k", uuid.uuid4(), {"i": i, "x": "y"}))
    return rows


def test_a_clean_chain_verifies_and_reports_its_head() -> None:
    rows = chain(5)
    result = verify_chain(rows)
    assert (result.ok, result.rows, result.head) == (True, 5, rows[-1].hash)


@given(st.integers(min_value=0, max_value=7), st.sampled_from(["payload", "hash", "prev_hash", "delete"]))
def test_any_edit_or_deletion_is_found_at_its_row(index: int, how: str) -> None:
    rows = chain(8)
    if how == "delete":
        del rows[index]
        if index == 7:
            return  # the tail: only an outside anchor (the AUDIT stream / snapshot head) shows it
    else:
        value = '{"i":999}' if how == "payload" else "f" * 64
        edit: dict[str, Any] = {how: value}  # one of the str fields, named at run time
        rows[index] = dataclasses.replace(rows[index], **edit)
    result = verify_chain(rows)
    assert not result.ok
    assert result.bad_seq == index + 1 or (how == "hash" and result.bad_seq == index + 2)


def test_canonical_payload_ignores_key_order() -> None:
    assert canonical({"b": 1, "a": 2}) == canonical({"a": 2, "b": 1}) == '{"a":2,"b":1}'


def test_a_command_is_audited_without_its_session_token() -> None:
    cmd = command("halt").model_copy(update={"session_token": "secret-token-value"})
    data = redacted_command(cmd, "accepted", "admin1")
    assert data["session_token"].startswith("sha256:")
    assert "secret-token-value" not in canonical(data)
    assert (data["outcome"], data["username"]) == ("accepted", "admin1")
