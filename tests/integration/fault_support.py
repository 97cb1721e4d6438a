"""Helpers for the fault and bad-input tests (no tests here): services as subprocesses, raw publishing,
readers of what landed on the bus, and a seeded generator of bad payloads."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import random
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nats.aio.client import Client as NATS

from shared.contracts.health import DeadLetter
from shared.runtime.bus import MSG_ID
from tests.support.streams import stored_messages

ROOT = Path(__file__).resolve().parents[2]
#: Stays well below nats-server's default max_payload (1 MiB) so the broker accepts it.
OVERSIZED = 600 * 1024


def spawn(module: str, nats_url: str, data_dir: Path, **env: str) -> subprocess.Popen[bytes]:
    """``python -m services.<module>`` against ``nats_url``; stderr goes to ``<data_dir>/<module>.log``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    full = os.environ | {
        "BASTION_NATS_URL": nats_url,
        "BASTION_DATA_DIR": str(data_dir),
        "BASTION_HOME": str(data_dir / "home"),
        "BASTION_LOG_LEVEL": "warning",
    }
    return subprocess.Popen(
        [sys.executable, "-m", f"services.{module}"],
        cwd=ROOT,
        env=full | env,
        stdout=subprocess.DEVNULL,
        stderr=open(data_dir / f"{module}.log", "ab"),  # the child owns it
    )


def log_tail(data_dir: Path, module: str, chars: int = 3000) -> str:
    path = data_dir / f"{module}.log"
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""


async def terminate(proc: subprocess.Popen[bytes], timeout: float = 20) -> int | str:
    """SIGTERM ``proc`` and return its exit code, or "hung" if it had to be SIGKILLed after ``timeout``."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return await asyncio.to_thread(proc.wait, timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        await asyncio.to_thread(proc.wait, 5)
        return "hung"


@dataclass
class Sent:
    """One published message and the stream sequence the server gave it."""

    subject: str
    data: bytes
    seq: int
    kind: str  # "good" or the kind of bad payload
    event_id: str | None = None


async def publish_all(nc: NATS, items: Sequence[tuple[str, bytes, str, str | None]]) -> list[Sent]:
    """Publish ``(subject, data, kind, event_id)`` in order; good ones carry their id as Nats-Msg-Id."""
    js = nc.jetstream()
    out: list[Sent] = []
    for subject, data, kind, event_id in items:
        headers = {MSG_ID: event_id} if event_id else {MSG_ID: uuid.uuid4().hex}
        ack = await js.publish(subject, data, headers=headers, timeout=10)
        assert not ack.duplicate, f"{kind} message on {subject} was dropped as a duplicate"
        out.append(Sent(subject, data, ack.seq, kind, event_id))
    return out


async def read_subject(nc: NATS, stream: str, subject: str) -> list[tuple[int, bytes]]:
    """Every message stored on ``subject`` (wildcards allowed) as ``(stream sequence, data)``."""
    return [
        (int(m.metadata.sequence.stream), m.data)
        for m in await stored_messages(nc.jetstream(), stream, subject)
    ]


async def count_subject(nc: NATS, stream: str, subject: str) -> int:
    try:
        info = await nc.jetstream().stream_info(stream, subjects_filter=subject)
    except Exception:  # stream not created yet
        return 0
    return sum((info.state.subjects or {}).values())


async def dead_letters(nc: NATS, service: str) -> list[DeadLetter]:
    return [DeadLetter.from_json(data) for _, data in await read_subject(nc, "DLQ", f"dlq.v1.{service}")]


# -- bad payloads ----------------------------------------------------------------------------------------

Mutation = Callable[[random.Random, dict[str, Any]], bytes]


def _dump(doc: Any) -> bytes:
    return json.dumps(doc, allow_nan=True).encode()


def _set(field: str, value: Any) -> Mutation:
    """Set ``field`` (dotted for nested objects, e.g. ``insight.symbol``) to ``value``."""

    def mutate(_rng: random.Random, doc: dict[str, Any]) -> bytes:
        *parents, last = field.split(".")
        top = copy.deepcopy(doc)
        node = top
        for name in parents:
            node = node[name]
        node[last] = value
        return _dump(top)

    return mutate


def _malformed(rng: random.Random, _doc: dict[str, Any]) -> bytes:
    return rng.choice(
        [
            b"",
            b"{",
            b"not json at all",
            b"\xff\xfe\x00garbage",
            bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 300))),
            b"[]",
            b"null",
            b"42",
            b'"a string"',
            b"{'single': 'quotes'}",
        ]
    )


def _truncated(rng: random.Random, doc: dict[str, Any]) -> bytes:
    data = _dump(doc)
    return data[: rng.randint(1, len(data) - 1)]


def _oversized(rng: random.Random, doc: dict[str, Any]) -> bytes:
    # an over-long required string field: the payload is big AND violates the contract
    field = rng.choice([k for k, v in doc.items() if isinstance(v, str) and k not in ("schema", "version")])
    return _dump(doc | {field: "X" * OVERSIZED})


def _deeply_nested(_rng: random.Random, doc: dict[str, Any]) -> bytes:
    depth = 5000
    return _dump(doc)[:-1] + b', "nested": ' + b"[" * depth + b"]" * depth + b"}"


REQUIRED = {"event_id", "occurred_at", "producer", "correlation_id", "command_id", "action", "session_token"}


def _missing(rng: random.Random, doc: dict[str, Any]) -> bytes:
    gone = rng.choice([k for k in doc if k in REQUIRED])
    return _dump({k: v for k, v in doc.items() if k != gone})


def _wrong_type(rng: random.Random, doc: dict[str, Any]) -> bytes:
    field = rng.choice([k for k in doc if k not in ("schema", "version")])
    return _dump(doc | {field: rng.choice([[{"$ne": 1}], [[1, 2], 3]])})


COMMON: dict[str, Mutation] = {
    "malformed": _malformed,
    "truncated": _truncated,
    "oversized": _oversized,
    "nested": _deeply_nested,
    "missing_field": _missing,
    "wrong_type": _wrong_type,
    "version_2": _set("version", "2.0"),
    "version_0": _set("version", "0.9"),
    "version_junk": _set("version", "'; DROP TABLE bars; --"),
    "schema_other": _set("schema", "bastion.other.thing"),
    "schema_sql": _set("schema", "x' OR '1'='1"),
    "event_id_sql": _set("event_id", "1; DELETE FROM processed_events"),
    "naive_time": _set("occurred_at", "2026-01-05T09:15:00"),
}


def symbol_mutations(path: str) -> dict[str, Mutation]:
    """Hostile symbols at ``path`` (``symbol``, or ``insight.symbol``)."""
    return {
        "unicode_symbol": _set(path, "ИНФИ\u202e\U0001f4a3"),
        "sql_symbol": _set(path, "INFY'; DROP TABLE outbox;--"),
        "wildcard_symbol": _set(path, "INFY.>"),
        "empty_symbol": _set(path, ""),
        "other_symbol": _set(path, "WIPRO"),  # valid, but not the symbol of the subject it is sent on
    }


def number_mutations(fields: list[str], positive: bool = True) -> dict[str, Mutation]:
    """Hostile numbers for numeric fields: NaN, infinities, huge, not a number; negative and zero too
    when the field must be ``positive`` (prices)."""
    out: dict[str, Mutation] = {}
    for field in fields:
        out[f"{field}_nan"] = _set(field, float("nan"))
        out[f"{field}_inf"] = _set(field, float("-inf"))
        out[f"{field}_string"] = _set(field, "1e999")
        if positive:
            out[f"{field}_negative"] = _set(field, -1.5)
            out[f"{field}_zero"] = _set(field, 0)
        out[f"{field}_huge"] = _huge(field)
    return out


def _huge(field: str) -> Mutation:
    """``1e400`` written literally (json.dumps cannot): parses to infinity."""
    marker = "__HUGE__"

    def mutate(rng: random.Random, doc: dict[str, Any]) -> bytes:
        return _set(field, marker)(rng, doc).replace(f'"{marker}"'.encode(), b"1e400")

    return mutate


def bad_payloads(
    rng: random.Random, goods: list[dict[str, Any]], mutations: dict[str, Mutation], n: int
) -> list[tuple[str, bytes]]:
    """``n`` bad payloads ``(kind, data)``: every mutation at least once, then seeded random picks."""
    kinds = list(mutations)
    picks = kinds + [rng.choice(kinds) for _ in range(max(0, n - len(kinds)))]
    return [(kind, mutations[kind](rng, rng.choice(goods))) for kind in picks]


def interleave(
    rng: random.Random, good: list[tuple[str, bytes, str | None]], bad: list[tuple[str, str, bytes]]
) -> list[tuple[str, bytes, str, str | None]]:
    """Good ``(subject, data, id)`` in order with bad ``(subject, kind, data)`` at seeded random places."""
    slots: list[list[tuple[str, bytes, str, str | None]]] = [[] for _ in range(len(good) + 1)]
    for subject, kind, data in bad:
        slots[rng.randint(0, len(good))].append((subject, data, kind, None))
    out: list[tuple[str, bytes, str, str | None]] = []
    for i, (subject, data, event_id) in enumerate(good):
        out += slots[i]
        out.append((subject, data, "good", event_id))
    return out + slots[-1]
