"""The whole platform end to end, as `bastion up` runs it: every service, three symbols of synthetic bars.

One run proves the chain bar -> insight -> signal -> risk decision -> order -> trade -> position, the KV
snapshots the dashboard reads, the audit hash chain, the dashboard's JSON API behind a real login, the same
figures on the dashboard's pages in a real Chromium, and that Ctrl-C leaves no process. The figures it
proves are printed (run with ``-s`` to see them).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import datetime
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import duckdb
import httpx
import nats
import yaml
from nats.js import JetStreamContext
from playwright.async_api import Browser, expect

from bastion.backtest.engine import Backtest, execution_config
from bastion.up import SAMPLE_BARS
from services.analytics.handlers import SNAPSHOT_BARS
from services.execution.adapters.config_file import load_config
from services.marketdata.domain.bars import SYNTHETIC, BarSeries
from services.marketdata.domain.sessions import NSE, session_times
from services.marketdata.domain.synthetic import generate
from tests.e2e.stack_support import (
    READY,
    Message,
    UpProcess,
    dashboard_login,
    durable_backlog,
    kv_json,
    pid_alive,
    read_stream,
    stream_count,
)
from tests.support.wait import eventually, wait_until

ROOT = Path(__file__).resolve().parents[2]
SYMBOLS = ("INFY", "TCS", "RELIANCE")  # bastion/up.py SAMPLE_SYMBOLS
BARS_PER_SYMBOL = SAMPLE_BARS  # what `make up` loads: every strategy warms up and trades
TOTAL_BARS = len(SYMBOLS) * BARS_PER_SYMBOL
SNAPSHOT_BARS_SHOWN = min(BARS_PER_SYMBOL, SNAPSHOT_BARS)  # the newest bars the analytics snapshot carries
RECENT_LIMIT = 200  # deploy/execution.yaml recent_limit
PIPELINE_STREAMS = ["MARKETDATA", "ANALYTICS", "SIGNALS", "EXECUTION"]
HEALTH_KEYS = [
    "health.auth",
    "health.execution",
    "health.strategy.1",
    "health.analytics",
    "health.marketdata",
    "health.dashboard",
]
SNAPSHOT_KEYS = [
    "marketdata.symbols",
    *(f"analytics.{s}" for s in SYMBOLS),
    "strategy.workers",
    "execution.risk",
    "execution.positions",
    "execution.orders.recent",
    "execution.trades.recent",
    "execution.audit",
    *HEALTH_KEYS,
]


def expected_durables() -> set[str]:
    """Consumers the services create (services/*/__main__.py, services/strategy/workers.py)."""
    per_symbol = {f"strategy-{kind}-{s}" for s in SYMBOLS for kind in ("bars", "insights")}
    return {"analytics-bars", "execution-bars", "execution-signals", "execution-commands", *per_symbol}


async def settled(js: JetStreamContext) -> dict[str, Any] | None:
    """The pipeline is done: every bar has its insight, every durable consumer is drained, execution has
    decided every signal and its audit covers every event it published."""
    if await stream_count(js, "MARKETDATA") < TOTAL_BARS or await stream_count(js, "ANALYTICS") < TOTAL_BARS:
        return None
    backlog = await durable_backlog(js, PIPELINE_STREAMS)
    if not expected_durables() <= set(backlog) or any(backlog.values()):
        return None
    health = await kv_json(js, "SNAPSHOTS", "health.execution")
    audit = await kv_json(js, "SNAPSHOTS", "execution.audit")
    signals, executed = await stream_count(js, "SIGNALS"), await stream_count(js, "EXECUTION")
    if not health or not audit or str(health["detail"].get("decisions")) != str(signals):
        return None
    if audit.get("rows") != executed:
        return None
    return {"signals": signals, "execution_events": executed}


def by_kind(execution: list[Message]) -> dict[str, list[dict[str, Any]]]:
    kinds: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for subject, event in execution:
        kinds[".".join(subject.split(".")[:3])].append(event)
    return kinds


def check_bars_and_insights(bars: list[Message], insights: list[Message]) -> None:
    assert len(bars) == TOTAL_BARS
    assert Counter(e["symbol"] for _, e in bars) == dict.fromkeys(SYMBOLS, BARS_PER_SYMBOL)
    bar_ids = {e["event_id"] for _, e in bars}
    assert len(bar_ids) == TOTAL_BARS, "duplicate bar event ids"
    assert len(insights) == TOTAL_BARS, "not one insight per bar"
    assert sorted(e["causation_id"] for _, e in insights) == sorted(bar_ids), (
        "insights do not map 1:1 to bars"
    )
    times = {datetime.fromisoformat(e["timestamp"]) for _, e in bars}  # the sample keeps NSE hours
    nse = {t.to_pydatetime() for t in session_times(min(times), len(times), 60, NSE)}
    assert times == nse, "a sample bar outside NSE hours"
    assert len({t.date() for t in times}) == 2, "the 500-bar sample spans two sessions"


def check_signals(signals: list[Message], bar_ids: set[str], insight_ids: set[str]) -> None:
    assert signals, "no strategy signal from 900 bars"
    ids = [e["event_id"] for _, e in signals]
    assert len(set(ids)) == len(ids), "duplicate signal event ids"
    assert {e["symbol"] for _, e in signals} == set(SYMBOLS)
    for _, s in signals:
        assert s["bar_event_id"] in bar_ids, s
        assert s["causation_id"] in bar_ids | insight_ids, s
        assert s["correlation_id"] in bar_ids, s


def check_decisions_orders_trades(
    signals: list[Message], kinds: dict[str, list[dict[str, Any]]], bar_ids: set[str]
) -> dict[str, Any]:
    signal_ids = {e["event_id"] for _, e in signals}
    decisions = kinds["risk.v1.decision"]
    assert sorted(d["signal_id"] for d in decisions) == sorted(signal_ids), "not one risk decision per signal"
    assert all(d["causation_id"] == d["signal_id"] for d in decisions)
    approved = {d["event_id"] for d in decisions if d["approved"]}
    orders, trades = kinds["exec.v1.order"], kinds["exec.v1.trade"]
    assert orders, "no order"
    assert trades, "no trade"
    by_id = {d["event_id"]: d for d in decisions}
    reversed_ = 0
    for o in orders:  # every order links to an approved decision and through it to a signal
        assert o["signal_id"] in signal_ids, o
        assert o["decision_id"] in approved, o
        assert o["correlation_id"] in bar_ids, o
        if o["status"] == "cancelled":  # a later target on the other side: caused by that decision
            reversed_ += 1
            cause = by_id[o["causation_id"]]
            assert cause["approved"], (o, cause)
            assert cause["symbol"] == o["symbol"], (o, cause)
            assert o["reason"].startswith(f"reversed by signal {cause['signal_id']}"), o
        else:
            assert o["causation_id"] == o["decision_id"], o
    accepted = {o["order_id"] for o in orders if o["status"] == "accepted"}
    filled = [o["order_id"] for o in orders if o["status"] == "filled"]
    assert len(accepted) == len([o for o in orders if o["status"] == "accepted"]), "an order accepted twice"
    assert set(filled) <= accepted
    assert len(set(filled)) == len(filled)
    for t in trades:  # every trade links to an accepted order and to the bar that filled it
        assert t["order_id"] in accepted, t
        assert t["causation_id"] == t["order_id"], t
        assert t["bar_event_id"] in bar_ids, t
    assert sorted(t["order_id"] for t in trades) == sorted(filled), "not one trade per filled order"
    assert len({t["trade_id"] for t in trades}) == len(trades), "duplicate trade ids"
    assert set(kinds) <= {"risk.v1.decision", "exec.v1.order", "exec.v1.trade", "risk.v1.state"}, set(kinds)
    rejected = Counter(
        c["name"] for d in decisions if not d["approved"] for c in d["checks"] if not c["passed"]
    )
    return {
        "decisions": len(decisions),
        "approved": len(approved),
        "rejected_by_check": dict(rejected),
        "orders_accepted": len(accepted),
        "orders_filled": len(filled),
        "orders_cancelled_by_a_reversal": reversed_,
        "trades": len(trades),
    }


def net_positions(trades: list[dict[str, Any]]) -> dict[str, Decimal]:
    net: dict[str, Decimal] = defaultdict(Decimal)
    for t in trades:
        qty = Decimal(t["quantity"])
        net[t["symbol"]] += qty if t["side"] == "buy" else -qty
    return {sym: qty for sym, qty in net.items() if qty}


def check_never_short(trades: list[dict[str, Any]]) -> None:
    """The sample account is long-only (deploy/execution.yaml allow_short: false): no trade, in the order
    they were made, takes a symbol below zero, though four strategies' signals share each symbol."""
    held: dict[str, Decimal] = defaultdict(Decimal)
    for t in trades:
        held[t["symbol"]] += Decimal(t["quantity"]) * (1 if t["side"] == "buy" else -1)
        assert held[t["symbol"]] >= 0, f"trade {t['trade_id']} left {t['symbol']} short {held[t['symbol']]}"


def check_books(snaps: dict[str, dict[str, Any]], kinds: dict[str, list[dict[str, Any]]]) -> None:
    """Each strategy holds its own book of a symbol: the snapshot's books are the strategies' own trades
    (through their orders), and they add up to the position."""
    strategy_of = {o["order_id"]: o["strategy_id"] for o in kinds["exec.v1.order"]}
    traded: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for t in kinds["exec.v1.trade"]:
        qty = Decimal(t["quantity"]) * (1 if t["side"] == "buy" else -1)
        traded[t["symbol"]][strategy_of[t["order_id"]]] += qty
    for p in snaps["execution.positions"]["positions"]:
        books = {k: Decimal(v) for k, v in p["books"].items()}
        assert books == {k: q for k, q in traded[p["symbol"]].items() if q}, p
        assert sum(books.values(), Decimal(0)) == Decimal(p["quantity"]), p


def check_orders_are_the_backtests(kinds: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """What `bastion up` traded is, strategy by strategy, what `bastion backtest` gives for the same sample
    and configs: the same order and trade ids, quantities, prices and commissions (each strategy has its own
    book, and no limit binds on this sample)."""
    base = load_config(ROOT / "deploy" / "execution.yaml")
    costs = base.effective_costs()
    config = execution_config(
        base.initial_cash,
        costs.commission_pct / 100,  # 0.03% of ~500-3,000 a unit never reaches the cap of 20
        costs.slippage_bps,
        base.sizing,
        base,
    )
    series = [
        BarSeries.of_frame(generate(s, BARS_PER_SYMBOL, 7, session=NSE), s, "1m", SYNTHETIC) for s in SYMBOLS
    ]
    want_orders, want_trades = set(), set()
    for item in yaml.safe_load((ROOT / "deploy" / "strategies.yaml").read_text())["instances"]:
        result = Backtest.create(item["name"], item["id"], item.get("params") or {}, config).run(series)
        want_orders |= {(str(o.event_id), o.status, str(o.quantity)) for o in result.orders}
        want_trades |= {
            (str(t.event_id), str(t.quantity), str(t.price), str(t.commission)) for t in result.fills
        }
    got_orders = {(o["event_id"], o["status"], o["quantity"]) for o in kinds["exec.v1.order"]}
    got_trades = {(t["event_id"], t["quantity"], t["price"], t["commission"]) for t in kinds["exec.v1.trade"]}
    assert got_orders == want_orders, (len(got_orders - want_orders), len(want_orders - got_orders))
    assert got_trades == want_trades, (len(got_trades - want_trades), len(want_trades - got_trades))
    return {"orders_as_in_the_backtests": len(want_orders)}


def check_snapshots(
    snaps: dict[str, dict[str, Any]], kinds: dict[str, list[dict[str, Any]]], insights: list[Message]
) -> None:
    missing = [k for k in SNAPSHOT_KEYS if snaps.get(k) is None]
    assert not missing, f"missing KV snapshots: {missing}"
    for key in HEALTH_KEYS:
        assert snaps[key]["status"] == "ok", (key, snaps[key])
    symbols = snaps["marketdata.symbols"]["symbols"]
    assert {s: symbols[s]["bars"] for s in SYMBOLS} == dict.fromkeys(SYMBOLS, BARS_PER_SYMBOL)
    for sym in SYMBOLS:
        analytics = snaps[f"analytics.{sym}"]
        assert analytics["symbol"] == sym
        assert len(analytics["bars"]) == SNAPSHOT_BARS_SHOWN
        last = [e for _, e in insights if e["insight"]["symbol"] == sym][-1]
        assert analytics["insight"]["event_id"] == last["event_id"], (
            "the snapshot's insight is not the latest"
        )
    assert set(snaps["strategy.workers"]["symbols"]) == set(SYMBOLS)
    assert snaps["execution.risk"]["state"] == "ACTIVE"
    assert snaps["execution.risk"]["mode"] == "paper"
    orders, trades = kinds["exec.v1.order"], kinds["exec.v1.trade"]
    recent = snaps["execution.orders.recent"]
    assert [o["event_id"] for o in recent["orders"]] == [o["event_id"] for o in orders[-RECENT_LIMIT:]]
    tail = kinds["risk.v1.decision"][-RECENT_LIMIT:]
    assert [d["event_id"] for d in recent["decisions"]] == [d["event_id"] for d in tail]
    recent_trades = snaps["execution.trades.recent"]["trades"]
    assert [t["event_id"] for t in recent_trades] == [t["event_id"] for t in trades[-RECENT_LIMIT:]]
    held = {p["symbol"]: Decimal(str(p["quantity"])) for p in snaps["execution.positions"]["positions"]}
    assert {s: q for s, q in held.items() if q} == net_positions(trades), "positions differ from the trades"


def shown_first(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The newest ``RECENT_LIMIT`` of a stream's events (in stream order) as the activity page lists them:
    newest first by the time it shows (a trade's fill time), those of one time newest published first."""

    def shown_time(event: dict[str, Any]) -> datetime:
        return datetime.fromisoformat(event.get("filled_at") or event["occurred_at"])

    return sorted(reversed(events[-RECENT_LIMIT:]), key=shown_time, reverse=True)


async def check_dashboard(up: UpProcess, kinds: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=up.dashboard_url, timeout=10) as client:
        assert (await client.get("/api/activity")).status_code == 401, "the API answers without a session"
        await dashboard_login(client, "admin", up.secret("admin-password"))
        me = (await client.get("/api/me")).json()
        assert me == {"username": "admin", "role": "admin"}
        activity = (await client.get("/api/activity")).json()
        overview = (await client.get("/api/overview")).json()
        listing = (await client.get("/api/symbols")).json()
    orders, trades = shown_first(kinds["exec.v1.order"]), shown_first(kinds["exec.v1.trade"])
    assert [(o["symbol"], o["side"], o["status"]) for o in activity["orders"]] == [
        (o["symbol"], o["side"], o["status"]) for o in orders
    ]
    assert [(t["symbol"], t["price"]) for t in activity["trades"]] == [
        (t["symbol"], t["price"]) for t in trades
    ]
    assert len(activity["decisions"]) == min(RECENT_LIMIT, len(kinds["risk.v1.decision"]))
    assert activity["audit"]["ok"] is True
    shown = {p["symbol"]: Decimal(str(p["quantity"])) for p in overview["positions"]}
    assert {s: q for s, q in shown.items() if q} == net_positions(kinds["exec.v1.trade"])
    assert overview["risk"]["state"] == "ACTIVE"
    health = {row["key"]: row["status"] for row in overview["health"]}
    assert all(health.get(k) == "ok" for k in HEALTH_KEYS), health
    assert {row["symbol"] for row in listing["symbols"]} == set(SYMBOLS)
    return {"dashboard_orders": len(activity["orders"]), "dashboard_positions": len(shown)}


async def check_dashboard_in_browser(
    browser: Browser, up: UpProcess, kinds: dict[str, list[dict[str, Any]]], artifacts: Path
) -> dict[str, Any]:
    """What a person sees: log in, the overview's kill switch and positions, the activity page's newest
    orders and trades, and a symbol's candles, each equal to what the streams hold."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    page.set_default_timeout(15_000)
    try:
        await page.goto(f"{up.dashboard_url}/")
        await page.fill("#username", "admin")
        await page.fill("#password", up.secret("admin-password"))
        await page.click("#login-submit")
        await expect(page.locator("#kill-switch").first).to_have_text("ACTIVE")
        held = net_positions(kinds["exec.v1.trade"])
        rows = page.locator("#positions tbody tr")
        await expect(rows.first).to_be_visible()
        shown = {}
        for row in await rows.all():
            cells = [c.strip() for c in await row.locator("td").all_inner_texts()]
            if len(cells) > 1:
                shown[cells[0]] = Decimal(cells[1].replace(",", ""))
        assert {s: q for s, q in shown.items() if q} == held, (shown, held)
        await page.screenshot(path=str(artifacts / "whole-stack-overview.png"), full_page=True)

        await page.goto(f"{up.dashboard_url}/activity")
        newest = shown_first(kinds["exec.v1.order"])[0]
        first_order = page.locator("#orders tbody tr").first.locator("td")
        await expect(first_order.nth(1)).to_have_text(newest["symbol"])
        await expect(first_order.nth(5)).to_have_text(newest["status"])
        await expect(page.locator("#trades tbody tr")).to_have_count(
            min(RECENT_LIMIT, len(kinds["exec.v1.trade"]))
        )
        await page.screenshot(path=str(artifacts / "whole-stack-activity.png"), full_page=True)

        await page.goto(f"{up.dashboard_url}/symbols/{SYMBOLS[0]}")
        await expect(page.locator("#symbol-name")).to_have_text(SYMBOLS[0])
        await expect(page.locator("#price-chart")).to_have_attribute("data-bars", str(SNAPSHOT_BARS_SHOWN))
        await page.screenshot(path=str(artifacts / "whole-stack-symbol.png"), full_page=True)
    finally:
        await context.close()
    return {"browser_positions": len(shown)}


def reap(pids: list[int]) -> list[int]:
    """The pids still alive a while after Ctrl-C; they are killed so a failure leaks nothing."""
    with contextlib.suppress(AssertionError):
        wait_until(lambda: not any(pid_alive(p) for p in pids), timeout=10, what="every child to exit")
    left = [p for p in pids if pid_alive(p)]
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return left


def run_cli(*args: str, home: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``bastion ARGS``; with ``home``, beside that `bastion up` (its broker, operator password, data)."""
    env = os.environ | ({"BASTION_HOME": str(home)} if home else {})
    return subprocess.run(
        [sys.executable, "-m", "bastion", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


def check_audit_while_running(home: Path, audit: dict[str, Any], filled_order: str) -> list[str]:
    """`bastion audit verify` beside the running stack, whose execution service holds execution.duckdb:
    the chain it published on the AUDIT stream verifies and reaches the head it reports. `trace` of one
    order from the streams: its ids, for ``check_after_stop`` to compare with the file's."""
    live = run_cli("audit", "verify", home=home)
    assert live.returncode == 0, live.stdout + live.stderr
    assert "the running execution service holds" in live.stderr, live.stderr
    said = " ".join(live.stdout.split())
    assert f"audit chain ok: {audit['rows']} rows, head {audit['head']} (AUDIT stream)" in said, said
    assert f"row {audit['rows']:,} is the execution service's head" in said, said
    traced = run_cli("audit", "trace", filled_order, home=home)
    assert traced.returncode == 0, traced.stdout + traced.stderr
    return traced.stdout.splitlines()


def check_after_stop(home: Path, audit: dict[str, Any], filled_order: str, traced_live: list[str]) -> None:
    """Bars in marketdata.duckdb; the audit chain in execution.duckdb verifies and ends at the head the
    running service reported in KV (so no row was lost from the end either); one order traces to its fill,
    through the same ids as the trace from the streams while the stack ran."""
    con = duckdb.connect(str(home / "data" / "marketdata.duckdb"), read_only=True)
    try:
        stored = con.execute("SELECT symbol, count(*) FROM bars GROUP BY symbol").fetchall()
    finally:
        con.close()
    assert dict(stored) == dict.fromkeys(SYMBOLS, BARS_PER_SYMBOL), stored
    db = str(home / "data" / "execution.duckdb")
    verified = run_cli("audit", "verify", "--db", db)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    said = " ".join(verified.stdout.split())
    assert f"audit chain ok: {audit['rows']} rows, head {audit['head']}" in said, verified.stdout
    traced = run_cli("audit", "trace", filled_order, "--db", db)
    assert traced.returncode == 0, traced.stdout + traced.stderr
    kinds = [line.split()[0] for line in traced.stdout.splitlines()]
    assert kinds == ["bar", "insight", "signal", "decision", "order", "order", "fill"], traced.stdout
    ids = [line.split()[:2] for line in traced.stdout.splitlines()]
    assert [line.split()[:2] for line in traced_live] == ids, (traced_live, traced.stdout)


async def test_bastion_up_carries_bars_to_trades_snapshots_audit_and_dashboard(
    tmp_path: Path, browser: Browser, artifacts: Path
) -> None:
    home = tmp_path / "state"
    up = UpProcess(home, BARS_PER_SYMBOL)
    figures: dict[str, Any] = {}
    try:
        await eventually(lambda: up.saw(READY), timeout=90, what="bastion up to be ready")
        state = up.state()
        nc = await nats.connect(
            state["nats_url"], user="operator", password=up.secret("secrets/operator.password")
        )
        try:
            js = nc.jetstream()
            drained: dict[str, Any] | None = await eventually(
                partial(settled, js), timeout=60, what="the pipeline to drain"
            )
            figures |= drained or {}
            bars, insights = await read_stream(js, "MARKETDATA"), await read_stream(js, "ANALYTICS")
            signals, execution = await read_stream(js, "SIGNALS"), await read_stream(js, "EXECUTION")
            audit_stream, dead = await stream_count(js, "AUDIT"), await stream_count(js, "DLQ")
            snaps = {k: v for k in SNAPSHOT_KEYS if (v := await kv_json(js, "SNAPSHOTS", k)) is not None}
        finally:
            await nc.close()
        bar_ids = {e["event_id"] for _, e in bars}
        check_bars_and_insights(bars, insights)
        check_signals(signals, bar_ids, {e["event_id"] for _, e in insights})
        kinds = by_kind(execution)
        figures |= check_decisions_orders_trades(signals, kinds, bar_ids)
        check_snapshots(snaps, kinds, insights)
        check_never_short(kinds["exec.v1.trade"])
        check_books(snaps, kinds)
        figures |= check_orders_are_the_backtests(kinds)
        assert dead == 0, f"{dead} dead letters"
        assert audit_stream == len(execution) == snaps["execution.audit"]["rows"], "audit rows != events"
        assert snaps["execution.audit"]["ok"] is True
        filled = next(o["order_id"] for o in kinds["exec.v1.order"] if o["status"] == "filled")
        traced = check_audit_while_running(home, snaps["execution.audit"], filled)
        figures |= await check_dashboard(up, kinds)
        figures |= await check_dashboard_in_browser(browser, up, kinds, artifacts)
    finally:
        pids = up.pids()
        code = up.stop()
        left = reap(pids)
    assert code == 0, up.text()
    assert not left, f"processes left after Ctrl-C (killed now): {left}"
    check_after_stop(home, snaps["execution.audit"], filled, traced)
    figures |= {
        "bars": len(bars),
        "insights": len(insights),
        "signals_by_strategy": dict(Counter(e["strategy_id"] for _, e in signals)),
        "audit_rows": audit_stream,
        "net_positions": {s: str(q) for s, q in net_positions(kinds["exec.v1.trade"]).items()},
        "dead_letters": dead,
        "processes_left": 0,
    }
    print("\nwhole-stack figures:", figures)
