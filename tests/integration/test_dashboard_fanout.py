"""SSE fan-out: one KV put reaches 50 connected clients; the latency is written as a test artifact."""

from __future__ import annotations

import asyncio
import json
import re
import statistics
import time
from pathlib import Path

import httpx
import pytest

from tests.browser.stack import dashboard_stack
from tests.support.wait import eventually
from tests.unit.dashboard.sample_snapshots import risk

CLIENTS = 50
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


async def test_one_change_reaches_50_sse_clients(
    nats_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with dashboard_stack(nats_url, tmp_path, monkeypatch) as stack:
        limits = httpx.Limits(max_connections=CLIENTS + 5)
        async with httpx.AsyncClient(base_url=stack.url, timeout=20, limits=limits) as client:
            page = await client.get("/login")
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert token is not None
            form = {"username": stack.username, "password": stack.password, "csrf_token": token.group(1)}
            assert (await client.post("/login", data=form)).status_code == 303
            ready = [asyncio.Event() for _ in range(CLIENTS)]
            arrived: dict[int, float] = {}

            async def listen(i: int) -> None:
                async with client.stream("GET", "/api/stream", params={"keys": "execution.risk"}) as response:
                    async for line in response.aiter_lines():
                        if line.startswith("event: hello"):
                            ready[i].set()
                        elif line.startswith("data:") and ready[i].is_set() and "execution.risk" in line:
                            arrived[i] = time.perf_counter()
                            return

            readers = [asyncio.create_task(listen(i)) for i in range(CLIENTS)]
            await asyncio.wait_for(asyncio.gather(*(r.wait() for r in ready)), 20)
            start = time.perf_counter()
            await stack.put("execution.risk", risk(state="ACTIVE", reason=""))
            await eventually(lambda: len(arrived) == CLIENTS, timeout=20, what=f"{CLIENTS} clients notified")
            await asyncio.gather(*readers)
    latencies = sorted((t - start) * 1000 for t in arrived.values())
    result = {
        "clients": CLIENTS,
        "median_ms": round(statistics.median(latencies), 1),
        "max_ms": round(latencies[-1], 1),
    }
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "bench-sse-fanout.json").write_text(json.dumps(result, indent=2))
    print("SSE fan-out:", result)
    assert result["max_ms"] < 5000
