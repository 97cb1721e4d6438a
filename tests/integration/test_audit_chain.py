"""`bastion audit verify` passes on a clean run's execution.duckdb and fails, naming the row, after a row is
edited or deleted in the file; `bastion audit trace` prints the chain of one order."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import duckdb
import pytest
from nats.aio.client import Client as NATS
from typer.testing import CliRunner

from services.execution.cli import audit_app
from tests.integration.test_execution_support import (
    InProcess,
    ensure_streams,
    publish,
    read_subject,
    wait_snapshot,
    write_config,
)
from tests.support.streams import stored_messages
from tests.unit.execution.helpers import bar, signal


@pytest.fixture
async def clean_db(nc: NATS, nats_url: str, tmp_path: Path) -> Path:
    await ensure_streams(nc)
    svc = await InProcess(nats_url, tmp_path / "data", write_config(tmp_path)).start()
    b0, b1, b2 = bar(0, 100.0), bar(1, 101.0), bar(2, 102.0)
    await publish(nc, [b0, signal(b0, "long"), b1, signal(b1, "flat"), b2])
    await wait_snapshot(nc, "execution.trades.recent", lambda v: len(v["trades"]) == 2, "two fills")
    audit = await wait_snapshot(nc, "execution.audit", lambda v: v["rows"] == 8, "eight audit rows")
    assert audit["ok"]
    await svc.stop()
    return tmp_path / "data" / "execution.duckdb"


KINDS = {"bar", "insight", "signal", "decision", "order", "fill"}


def verify(path: Path) -> tuple[int, str]:
    result = CliRunner().invoke(audit_app, ["verify", "--db", str(path)])
    return result.exit_code, result.output


def edited(src: Path, sql: str) -> Path:
    dst = src.with_name("edited.duckdb")
    shutil.copy(src, dst)
    conn = duckdb.connect(str(dst))
    conn.execute(sql)
    conn.close()
    return dst


async def test_audit_verify_passes_on_a_clean_run(clean_db: Path) -> None:
    code, output = verify(clean_db)
    assert code == 0, output
    assert "8 rows" in output


@pytest.mark.parametrize(
    ("sql", "row"),
    [
        ("UPDATE audit SET payload = replace(payload, 'true', 'false') WHERE seq = 5", 5),
        ("DELETE FROM audit WHERE seq = 3", 3),
        ("UPDATE audit SET hash = repeat('a', 64) WHERE seq = 2", 2),
    ],
)
async def test_audit_verify_fails_naming_the_row_after_an_edit(clean_db: Path, sql: str, row: int) -> None:
    code, output = verify(edited(clean_db, sql))
    assert code == 1
    assert f"row {row}" in output


async def test_audit_trace_prints_bar_signal_decision_order_and_fill(nc: NATS, clean_db: Path) -> None:
    orders = await read_subject(nc, "EXECUTION", "exec.v1.order.>")
    order_id = orders[0]["order_id"]
    result = CliRunner().invoke(audit_app, ["trace", order_id, "--db", str(clean_db)])
    assert result.exit_code == 0, result.output
    kinds = [line.split()[0] for line in result.output.splitlines()]
    assert kinds == ["bar", "insight", "signal", "decision", "order", "order", "fill"]
    assert orders[0]["signal_id"] in result.output


def test_audit_cli_errors_are_clear(tmp_path: Path) -> None:
    missing = CliRunner().invoke(audit_app, ["verify", "--db", str(tmp_path / "none.duckdb")])
    assert missing.exit_code == 2
    assert "does not exist" in missing.output
    bad = CliRunner().invoke(audit_app, ["trace", "not-a-uuid", "--db", str(tmp_path / "x.duckdb")])
    assert bad.exit_code == 2
    assert "not a UUID" in bad.output


async def test_audit_verify_without_the_file_checks_the_chain_published_on_the_audit_stream(
    nc: NATS, nats_url: str, clean_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, output = verify(clean_db)
    head = output.split("head ")[1].split()[0]
    monkeypatch.setenv("BASTION_NATS_URL", nats_url)
    monkeypatch.setenv("BASTION_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("BASTION_DATA_DIR", str(tmp_path / "elsewhere"))  # as on a host beside docker

    def published(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(audit_app, ["verify", *args])
        return result.exit_code, " ".join(result.output.split())

    code, said = await asyncio.to_thread(published)
    assert code == 0, said
    assert "there is no" in said
    assert "checking the chain the execution service published on the AUDIT stream instead" in said
    assert f"audit chain ok: 8 rows, head {head} (AUDIT stream)" in said
    assert "row 8 is the execution service's head" in said

    records = [json.loads(m.data) for m in await stored_messages(nc.jetstream(), "AUDIT", "audit.v1.exec")]
    await nc.publish("audit.v1.exec", json.dumps(records[6]).encode())  # row 7 again, as after a crash
    await nc.publish("audit.v1.exec", json.dumps(records[7]).encode())
    await nc.flush()
    code, said = await asyncio.to_thread(published, "--stream")
    assert code == 0, said
    assert f"audit chain ok: 8 rows, head {head} (AUDIT stream)" in said
    assert "2 record(s) stored twice (republished after a crash) skipped" in said

    orders = await read_subject(nc, "EXECUTION", "exec.v1.order.>")
    filled = [o for o in orders if o["status"] == "filled"][-1]  # its fill and trade are the repeated ones
    traced = await asyncio.to_thread(CliRunner().invoke, audit_app, ["trace", filled["order_id"]])
    assert traced.exit_code == 0, traced.output
    assert "tracing from what the execution service published on the AUDIT stream" in traced.output
    lines = [line for line in traced.output.splitlines() if line.split()[0] in KINDS]
    assert [line.split()[0] for line in lines] == [
        "bar",
        "insight",
        "signal",
        "decision",
        "order",
        "order",
        "fill",
    ]
    assert filled["signal_id"] in lines[2]
    assert lines[4].split()[1:4:2] == [filled["order_id"], "accepted"]  # the repeats are not listed twice
    from_file = CliRunner().invoke(audit_app, ["trace", filled["order_id"], "--db", str(clean_db)])
    assert lines == from_file.output.splitlines()  # the same ids, times and figures, in the same format
    await nc.jetstream().purge_stream("SIGNALS")  # as after its 30 days
    aged = await asyncio.to_thread(CliRunner().invoke, audit_app, ["trace", filled["order_id"], "--stream"])
    assert aged.exit_code == 0, aged.output
    assert f"signal    {filled['signal_id']}  (no longer in the SIGNALS stream)" in aged.output
    assert [line.split()[0] for line in aged.output.splitlines()] == [
        "signal",
        "decision",
        "order",
        "order",
        "fill",
    ]

    forged = records[7] | {"payload": records[7]["payload"].replace("filled", "cancelled")}
    await nc.publish(
        "audit.v1.exec", json.dumps(forged | {"seq": 9, "prev_hash": records[7]["hash"]}).encode()
    )
    await nc.flush()
    code, said = await asyncio.to_thread(published)
    assert code == 1
    assert "audit chain BROKEN at row 9 (AUDIT stream): hash does not match its payload" in said
