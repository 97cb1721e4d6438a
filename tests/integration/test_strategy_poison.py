"""A bar that kills every strategy worker process that runs it (a plugin's segfault, say) is dead-lettered
after a bounded number of deaths, and the symbol goes on.

Before, each new owner rewound the symbol's consumer, which counts deliveries from 1 again, so the bar never
reached ``max_deliver`` and killed the workers for ever (see ``prepare_consumer``). Now the loop dead-letters
it, as every service does with a message that keeps killing it: a dead worker's unacked bars that came back
twice, or that a rewound consumer hands out again, are run one at a time, so only the poison bar is
dead-lettered and every other bar, of its batch or after it, is run. Six deaths: the first worker's, then one
for each of the ``max_deliver`` starts of the poison bar alone. (It took nine while a rewound consumer, whose
deliveries count from 1 again, ran its first batch whole.)"""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

import pytest
from nats.aio.client import Client as NATS

from services.strategy.config import load_config
from services.strategy.domain.signals import build_signal
from shared.contracts import DeadLetter
from shared.contracts.market_data import OHLCVBar
from tests.integration.test_strategy_scaling import Workers, feeder, signals_in_stream
from tests.support.plugins import KILLS_ON_BAR, install_plugins
from tests.support.wait import eventually
from tests.unit.strategy.helpers import bar, run

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

SYMBOL, POISON, KILL = "KIL", 12, 777.0
CLOSES = [100 + (i % 7) * 1.5 - (i % 3) for i in range(60)]


async def test_a_bar_that_kills_every_worker_is_dead_lettered_and_the_symbol_goes_on(
    nc: NATS, nats_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bars = [bar(i, KILL if i == POISON else c, SYMBOL) for i, c in enumerate(CLOSES)]
    first, later = bars[:30], bars[30:]  # the poison among the first; the later ones come after it is gone
    install_plugins(tmp_path / "plugins", monkeypatch, KILLS_ON_BAR)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "plugins"))  # the plugin, for the worker processes
    monkeypatch.setenv("BASTION_STRATEGY_LEASE_SECONDS", "1")
    config = tmp_path / "strategies.yaml"
    config.write_text(
        "instances:\n"
        f"  - {{name: sma_cross, id: sma, params: {{fast: 2, slow: 4}}, symbols: [{SYMBOL}]}}\n"
        f"  - {{name: kills_on_bar, id: killer, params: {{kill_close: {KILL}}}, symbols: [{SYMBOL}]}}\n"
    )
    workers = Workers(nats_url, tmp_path, config)
    bus = await feeder(nats_url)
    js = nc.jetstream()
    deaths = 0

    def supervise() -> None:
        nonlocal deaths
        if workers.procs["w"].poll() is not None:  # died: restarted, as a supervisor would
            deaths += 1
            workers.procs.pop("w")
            workers.start("w")

    async def letters() -> list[DeadLetter]:
        try:
            n = (await js.stream_info("DLQ")).state.messages
        except Exception:
            return []
        sub = await js.subscribe("dlq.v1.>", stream="DLQ", ordered_consumer=True)
        got = [DeadLetter.from_json((await sub.next_msg(timeout=5)).data) for _ in range(n)]
        await sub.unsubscribe()
        return got

    def bar_ids(dead: list[DeadLetter]) -> set[uuid.UUID]:
        return {OHLCVBar.from_json(base64.b64decode(x.payload_b64)).event_id for x in dead}

    try:
        await bus.publish_many([(b.subject(), b) for b in first])
        workers.start("w")

        async def poison_gone() -> bool:  # dead-lettered, and every other bar of the first ones done
            supervise()
            if bars[POISON].event_id not in bar_ids(await letters()):
                return False
            info = await js.consumer_info("MARKETDATA", f"strategy-bars-{SYMBOL}")
            return (info.num_ack_pending, info.num_pending) == (0, 0)

        await eventually(poison_gone, timeout=200, interval=0.2, what="the poison bar dead-lettered")
        dropped = await letters()
        await bus.publish_many([(b.subject(), b) for b in later])
        gone = bar_ids(dropped)
        run_on = [(b, None) for b in bars if b.event_id not in gone]
        sma = next(i.strategy for i in load_config(config) if i.strategy.instance_id == "sma")
        want = sorted(build_signal(sma, run_on[n][0], None, d).to_json() for n, d in run(sma, run_on))

        async def all_signals() -> bool:
            supervise()
            return (await js.stream_info("SIGNALS")).state.messages >= len(want)

        await eventually(all_signals, timeout=60, interval=0.2, what=f"{len(want)} signals")
        got = await signals_in_stream(nc, len(want))
        assert workers.procs["w"].poll() is None  # alive: the later bars did not kill it
    finally:
        await bus.close()
        workers.close()
    assert sorted(s.to_json() for s in got) == want  # every bar that was not dead-lettered, once
    assert {(x.consumer, x.kind) for x in dropped} == {(f"strategy-bars-{SYMBOL}", "exhausted")}
    assert gone == {bars[POISON].event_id}  # only the poison: the other bars of its batch were run
    assert [s for s in got if s.bar_timestamp >= later[0].timestamp], "the later bars were run"
    assert 1 <= deaths <= 7, deaths  # 6, and one to spare for a first batch fetched in two parts
    print(f"\n{deaths} worker deaths; {len(gone)} bars dead-lettered")
