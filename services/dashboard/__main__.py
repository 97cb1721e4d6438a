"""``python -m services.dashboard``: watch SNAPSHOTS, serve the app, heartbeat ``health.dashboard``."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Generator

import uvicorn

from services.dashboard.adapters.auth_client import AuthClient
from services.dashboard.adapters.store import SnapshotStore, watch_snapshots
from services.dashboard.app import create_app
from services.dashboard.settings import DashboardSettings
from shared.runtime.bus import Bus
from shared.runtime.service import ServiceParts, ServiceRunner
from shared.runtime.settings import RuntimeSettings


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the ServiceRunner owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def make_runner(settings: RuntimeSettings, web: DashboardSettings) -> ServiceRunner:
    store = SnapshotStore()

    async def setup(bus: Bus) -> ServiceParts:
        app = create_app(store, AuthClient(bus.nc), web)
        config = uvicorn.Config(
            app,
            host=web.host,
            port=web.port,
            log_config=None,
            access_log=False,
            lifespan="off",
            proxy_headers=False,
            timeout_graceful_shutdown=3,
        )
        server = _Server(config)

        async def watch(stop: asyncio.Event) -> None:
            await watch_snapshots(bus.js, store, stop)

        async def serve(stop: asyncio.Event) -> None:
            task = asyncio.create_task(server.serve())
            stopper = asyncio.create_task(stop.wait())
            await asyncio.wait([task, stopper], return_when=asyncio.FIRST_COMPLETED)
            store.close_subscribers()  # end SSE streams so the server can stop
            server.should_exit = True
            await task
            stopper.cancel()
            if not server.started:
                raise RuntimeError(f"the dashboard could not listen on {web.host}:{web.port}")

        def detail() -> dict[str, str]:
            return {
                "url": f"http://{web.host}:{web.port}",
                "snapshots": str(len(store.snaps)),
                "sse_clients": str(store.subscribers),
            }

        return ServiceParts(tasks=[watch, serve], detail=detail)

    return ServiceRunner(settings=settings, setup=setup)


def main() -> int:
    try:
        web = DashboardSettings.from_env()
        settings = RuntimeSettings.from_env("dashboard")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return make_runner(settings, web).main()


if __name__ == "__main__":
    sys.exit(main())
