"""Bad input on every subject a service consumes: malformed, truncated, oversized, wrong-version,
wrong-schema and hostile payloads (NaN, huge numbers, unicode and SQL-looking symbols, deep nesting,
negative prices), seeded and interleaved with good messages, published into the real services run as
``python -m services.<svc>``. The process stays alive, every bad message is in ``dlq.v1.<service>`` with a
reason, and every good message is processed (its output appears)."""

from __future__ import annotations

import json
import random
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from shared.contracts import subjects
from shared.contracts.auth import SessionReply
from shared.contracts.envelope import Event
from shared.contracts.health import Heartbeat
from shared.contracts.market_data import OHLCVBar
from shared.runtime.bus import Bus
from tests.integration.fault_support import (
    COMMON,
    Mutation,
    Sent,
    bad_payloads,
    count_subject,
    dead_letters,
    interleave,
    log_tail,
    number_mutations,
    publish_all,
    read_subject,
    spawn,
    symbol_mutations,
    terminate,
)
from tests.integration.test_execution_support import write_config
from tests.support.wait import eventually
from tests.unit.analytics.support import bars
from tests.unit.execution.helpers import command, signal
from tests.unit.strategy.helpers import insight

SEED = 20_261_125
BAD = 150  # per consumed subject
BAR_MUTATIONS = (
    COMMON
    | symbol_mutations("symbol")
    | number_mutations(["open", "high", "low", "close"])
    | number_mutations(["volume"], positive=False)
)
INSIGHT_MUTATIONS = (
    COMMON
    | symbol_mutations("insight.symbol")
    | number_mutations(["insight.confidence", "insight.score"], positive=False)
)
SIGNAL_MUTATIONS = COMMON | symbol_mutations("symbol") | number_mutations(["strength"], positive=False)
COMMAND_MUTATIONS = COMMON | symbol_mutations("symbol")


def doc(event: Any) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(event.to_json())
    return loaded


def good_items(events: list[Any]) -> list[tuple[str, bytes, str | None]]:
    return [(_subject_of(e), e.to_json(), _id_of(e)) for e in events]


def _subject_of(event: Any) -> str:
    return subjects.RISK_COMMAND if not isinstance(event, Event) else str(event.subject())  # type: ignore[attr-defined]


def _id_of(event: Any) -> str:
    return str(event.event_id if isinstance(event, Event) else event.command_id)


def bad_on(
    rng: random.Random, subject_for: Callable[[int], str], goods: list[Any], mutations: dict[str, Mutation]
) -> list[tuple[str, str, bytes]]:
    docs = [doc(e) for e in goods]
    return [
        (subject_for(i), kind, data) for i, (kind, data) in enumerate(bad_payloads(rng, docs, mutations, BAD))
    ]


def paired(a: list[OHLCVBar], b: list[OHLCVBar]) -> list[OHLCVBar]:
    return [x for pair in zip(a, b, strict=True) for x in pair]


async def settle(
    nc: NATS,
    proc: Any,
    data_dir: Path,
    module: str,
    bad: int,
    done: Callable[[], Awaitable[bool]],
    timeout: float = 45,
) -> None:
    """Wait until ``bad`` dead letters and ``done()``, failing at once if the process died."""

    async def probe() -> bool:
        assert proc.poll() is None, f"{module} died with {proc.returncode}:\n{log_tail(data_dir, module)}"
        return await count_subject(nc, "DLQ", f"dlq.v1.{module}") >= bad and await done()

    await eventually(
        probe, timeout=timeout, interval=0.1, what=f"{module}: {bad} dead letters and all good output"
    )
    assert proc.poll() is None


async def check_dead_letters(nc: NATS, service: str, sent: list[Sent]) -> dict[str, int]:
    """Exactly the bad messages are dead-lettered, each once, as permanent, with a reason."""
    bad = {(s.subject, s.seq): s for s in sent if s.kind != "good"}
    letters = await dead_letters(nc, service)
    by_key = {(d.subject, d.stream_sequence): d for d in letters}
    assert len(by_key) == len(letters), "a message was dead-lettered twice"
    assert set(by_key) == set(bad), "dead letters are not exactly the bad messages"
    for key, letter in by_key.items():
        assert letter.kind == "permanent", (bad[key].kind, letter.reason)
        assert letter.reason.strip(), f"no reason for {bad[key].kind}"
    kinds: dict[str, int] = {}
    for s in bad.values():
        kinds[s.kind] = kinds.get(s.kind, 0) + 1
    return kinds


def report(service: str, sent: list[Sent], kinds: dict[str, int], outputs: int) -> None:
    good = sum(1 for s in sent if s.kind == "good")
    print(
        f"\n{service}: published {len(sent)} ({good} good, {len(sent) - good} bad of {len(kinds)} kinds); "
        f"dead-lettered {sum(kinds.values())}; outputs {outputs}; process alive"
    )


async def test_analytics_survives_bad_bars_dead_letters_each_and_processes_every_good_bar(
    nc: NATS, nats_url: str, tmp_path: Path
) -> None:
    await Bus(nc, "test").ensure_streams(["MARKETDATA", "ANALYTICS", "DLQ"])
    rng = random.Random(SEED)
    good = paired(bars("INFY", 60, seed=5), bars("TCS", 60, seed=6))
    bad = bad_on(rng, lambda i: ("md.v1.bar.INFY", "md.v1.bar.TCS")[i % 2], good, BAR_MUTATIONS)
    data = tmp_path / "data"
    proc = spawn("analytics", nats_url, data, BASTION_ANALYTICS_BATCH="50")
    try:
        sent = await publish_all(nc, interleave(rng, good_items(good), bad))

        async def all_insights() -> bool:
            return await count_subject(nc, "ANALYTICS", "analytics.v1.insight.>") >= len(good)

        await settle(nc, proc, data, "analytics", len(bad), all_insights)
        kinds = await check_dead_letters(nc, "analytics", sent)
        insights = [json.loads(d) for _, d in await read_subject(nc, "ANALYTICS", "analytics.v1.insight.>")]
        assert sorted(i["bar_event_id"] for i in insights) == sorted(str(b.event_id) for b in good)
        report("analytics", sent, kinds, len(insights))
    finally:
        assert await terminate(proc) == 0, log_tail(data, "analytics")


def strategy_config(tmp_path: Path) -> Path:
    path = tmp_path / "strategies.yaml"
    instances = [
        {"name": "sma_cross", "id": "sma-5-10", "params": {"fast": 5, "slow": 10}, "symbols": ["INFY"]},
        {"name": "confluence_consumer", "id": "conf-60", "params": {}, "symbols": ["INFY"]},
    ]
    path.write_text(yaml.safe_dump({"instances": instances}))
    return path


async def heartbeat(nc: NATS, key: str) -> Heartbeat | None:
    try:
        entry = await (await nc.jetstream().key_value(subjects.SNAPSHOTS_BUCKET)).get(key)
    except Exception:  # no bucket or no key yet
        return None
    return Heartbeat.from_json(entry.value or b"")


async def test_strategy_survives_bad_bars_and_insights_and_processes_every_good_one(
    nc: NATS, nats_url: str, tmp_path: Path
) -> None:
    await Bus(nc, "test").ensure_streams(["MARKETDATA", "ANALYTICS", "SIGNALS", "DLQ"])
    rng = random.Random(SEED + 1)
    series = bars("INFY", 80, seed=7)
    insights = [
        insight(b, bias="bullish" if i % 20 < 10 else "bearish", confidence=0.8) for i, b in enumerate(series)
    ]
    good: list[Any] = [x for pair in zip(series, insights, strict=True) for x in pair]
    bad = bad_on(rng, lambda _i: "md.v1.bar.INFY", series, BAR_MUTATIONS)
    bad += bad_on(rng, lambda _i: "analytics.v1.insight.INFY", insights, INSIGHT_MUTATIONS)
    data = tmp_path / "data"
    env = {"BASTION_STRATEGY_CONFIG": str(strategy_config(tmp_path)), "BASTION_STRATEGY_WORKER": "w1"}
    proc = spawn("strategy", nats_url, data, **env)
    try:
        sent = await publish_all(nc, interleave(rng, good_items(good), bad))

        async def all_processed() -> bool:
            beat = await heartbeat(nc, "health.strategy.w1")
            return beat is not None and int(beat.detail.get("processed", 0)) >= len(good)

        await settle(nc, proc, data, "strategy", len(bad), all_processed)
        kinds = await check_dead_letters(nc, "strategy", sent)
        beat = await heartbeat(nc, "health.strategy.w1")
        assert beat is not None
        assert int(beat.detail["processed"]) == len(good)
        assert int(beat.detail["dead_lettered"]) == len(bad)
        assert (beat.processed, beat.dead_lettered) == (len(good), len(bad))  # what status and the page show
        signals = await count_subject(nc, "SIGNALS", "strategy.v1.signal.>")
        assert signals > 0, "good bars and insights gave no signal at all"
        report("strategy", sent, kinds, signals)
    finally:
        assert await terminate(proc) == 0, log_tail(data, "strategy")


async def deny_every_token(msg: Msg) -> None:
    await msg.respond(SessionReply.model_validate({"ok": False, "error": "invalid session"}).to_json())


async def test_execution_survives_bad_signals_bars_and_commands_and_processes_every_good_one(
    nc: NATS, nats_url: str, tmp_path: Path
) -> None:
    await Bus(nc, "test").ensure_streams(["MARKETDATA", "SIGNALS", "EXECUTION", "AUDIT", "DLQ"])
    auth = await nc.subscribe(subjects.AUTH_VERIFY, cb=deny_every_token)  # every command: audited, denied
    rng = random.Random(SEED + 2)
    series = bars("INFY", 60, seed=8)
    sigs = [signal(b, "long" if i % 4 < 2 else "flat") for i, b in enumerate(series)]
    cmds = [command("halt" if i % 2 else "resume") for i in range(10)]
    good: list[Any] = [x for pair in zip(series, sigs, strict=True) for x in pair] + cmds
    bad = bad_on(rng, lambda _i: "md.v1.bar.INFY", series, BAR_MUTATIONS)
    bad += bad_on(rng, lambda _i: "strategy.v1.signal.INFY", sigs, SIGNAL_MUTATIONS)
    bad += bad_on(rng, lambda _i: subjects.RISK_COMMAND, cmds, COMMAND_MUTATIONS)
    data = tmp_path / "data"
    proc = spawn("execution", nats_url, data, BASTION_EXECUTION_CONFIG=str(write_config(tmp_path)))
    try:
        sent = await publish_all(nc, interleave(rng, good_items(good), bad))

        async def decided() -> bool:
            return await count_subject(nc, "EXECUTION", "risk.v1.decision.>") >= len(sigs)

        await settle(nc, proc, data, "execution", len(bad), decided)
        kinds = await check_dead_letters(nc, "execution", sent)
        decisions = [json.loads(d) for _, d in await read_subject(nc, "EXECUTION", "risk.v1.decision.>")]
        assert sorted(d["signal_id"] for d in decisions) == sorted(str(s.event_id) for s in sigs)
    finally:
        code = await terminate(proc)
        await auth.unsubscribe()
    assert code == 0, log_tail(data, "execution")
    conn = duckdb.connect(str(data / "execution.duckdb"), read_only=True)
    rows = conn.execute("SELECT consumer, event_id FROM processed_inputs").fetchall()
    conn.close()
    processed = {(c, str(e)) for c, e in rows}
    expected = {("bars", str(b.event_id)) for b in series} | {("signals", str(s.event_id)) for s in sigs}
    expected |= {("commands", str(c.command_id)) for c in cmds}
    assert processed == expected
    report("execution", sent, kinds, len(decisions))


async def outputs_of(nc: NATS, module: str) -> set[str]:
    """The causes (bar or signal ids) of what ``module`` has output so far."""
    if module == "analytics":
        return {json.loads(d)["bar_event_id"] for _, d in await read_subject(nc, "ANALYTICS", "analytics.>")}
    return {json.loads(d)["signal_id"] for _, d in await read_subject(nc, "EXECUTION", "risk.v1.decision.>")}


@pytest.mark.parametrize(
    ("module", "streams"),
    [
        ("analytics", ["MARKETDATA", "ANALYTICS", "DLQ"]),
        ("execution", ["MARKETDATA", "SIGNALS", "EXECUTION", "AUDIT", "DLQ"]),
    ],
)
async def test_an_event_whose_symbol_differs_from_its_subject_is_dead_lettered_not_processed(
    nc: NATS, nats_url: str, tmp_path: Path, module: str, streams: list[str]
) -> None:
    await Bus(nc, "test").ensure_streams(streams)
    infy, tcs = bars("INFY", 1, seed=9)[0], bars("TCS", 1, seed=10)[0]
    wrong, sentinel = (infy, tcs) if module == "analytics" else (signal(infy), signal(tcs))
    on_tcs = sentinel.subject()
    items = [(on_tcs, wrong.to_json(), "mismatch", str(wrong.event_id))]
    items += [(on_tcs, sentinel.to_json(), "good", str(sentinel.event_id))]
    if module == "execution":  # a signal is decided once its bar is known
        items += [(b.subject(), b.to_json(), "good", str(b.event_id)) for b in (infy, tcs)]
    env = {"BASTION_EXECUTION_CONFIG": str(write_config(tmp_path))} if module == "execution" else {}
    data = tmp_path / "data"
    proc = spawn(module, nats_url, data, **env)
    try:
        sent = await publish_all(nc, items)

        async def sentinel_done() -> bool:
            return str(sentinel.event_id) in await outputs_of(nc, module)

        await settle(nc, proc, data, module, 0, sentinel_done, timeout=20)
        processed_wrong = str(wrong.event_id) in await outputs_of(nc, module)
        assert not processed_wrong, f"{module} processed a {wrong.symbol} event published on {on_tcs}"
        await check_dead_letters(nc, module, [s for s in sent if s.kind == "mismatch"])
    finally:
        assert await terminate(proc) == 0, log_tail(data, module)
