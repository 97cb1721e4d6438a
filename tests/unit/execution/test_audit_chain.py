"""The hash chain: any edited, deleted or reordered row is found and named; tokens never enter it."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from services.execution.domain.audit import (
    AuditRow,
    ChainCheck,
    VerifyResult,
    canonical,
    chain_hash,
    next_row,
    redacted_command,
    verify_chain,
)
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


def walk(rows: list[AuditRow], check: ChainCheck) -> VerifyResult:
    for row in rows:
        if check.take(row) is not None:
            break
    return check.result()


def test_the_streams_copy_skips_a_row_stored_twice_but_not_a_changed_one() -> None:
    rows = chain(6)
    republished = [*rows[:5], rows[3], rows[4], rows[5]]  # rows 4 and 5 again after a crash, then row 6
    result = walk(republished, ChainCheck(repeats=100))
    assert (result.ok, result.rows, result.head) == (True, 6, rows[-1].hash)
    changed = [*rows[:5], dataclasses.replace(rows[3], payload='{"i":999}'), rows[5]]
    broken = walk(changed, ChainCheck(repeats=100))
    assert (broken.ok, broken.bad_seq) == (False, 4)
    assert broken.problem == "row 4 appears again after row 5, not as the same row"
    assert not walk(republished, ChainCheck()).ok  # the file's rule: no row comes twice


def test_a_chain_whose_oldest_rows_are_gone_is_checked_from_the_first_one_left() -> None:
    rows = chain(8)
    result = walk(rows[3:], ChainCheck(first=4, prev_hash=None))
    assert (result.ok, result.rows, result.head) == (True, 5, rows[-1].hash)
    assert walk(rows[3:], ChainCheck()).bad_seq == 1  # from row 1: row 1 is missing
    tampered = [rows[3], dataclasses.replace(rows[4], payload='{"i":999}'), *rows[5:]]
    assert walk(tampered, ChainCheck(first=4, prev_hash=None)).bad_seq == 5


def test_row_one_must_chain_onto_the_genesis_hash() -> None:
    forged = next_row(None, "k", uuid.uuid4(), {"i": 0})
    forged = dataclasses.replace(forged, prev_hash="e" * 64, hash=chain_hash("e" * 64, forged.payload))
    result = walk([forged], ChainCheck())
    assert (result.ok, result.bad_seq, result.problem) == (
        False,
        1,
        "prev_hash does not match the row before",
    )
