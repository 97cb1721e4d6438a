"""A 3-node ``nats-server`` cluster with JetStream on loopback, for the cluster fault tests.

Each node gets free client, route and monitor ports, its own store folder, config and log file under
``root``. ``start()`` returns once every node answers on its monitor port and agrees on a JetStream meta
leader, so R3 streams can be created straight away.
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bastion.natsd import NatsServer, NatsServerError, free_port

HOST = "127.0.0.1"


@dataclass
class ClusterNode:
    """One node: ``name`` is its ``server_name``, which JetStream reports as stream leader or replica."""

    name: str
    server: NatsServer
    route_port: int
    monitor_port: int

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def running(self) -> bool:
        proc = self.server.process
        return proc is not None and proc.poll() is None

    def monitor(self, path: str, timeout: float = 1.0) -> dict[str, Any] | None:
        """JSON of the monitoring endpoint ``path`` (e.g. ``/jsz``), None while the node cannot answer."""
        try:
            with urllib.request.urlopen(f"http://{HOST}:{self.monitor_port}{path}", timeout=timeout) as resp:
                return dict(json.loads(resp.read()))
        except (urllib.error.URLError, OSError, ValueError):
            return None


def node_config(
    name: str, cluster: str, store: Path, route_port: int, monitor_port: int, routes: list[int]
) -> str:
    """nats-server config of one node; the client address and port are given on the command line."""
    route_urls = ", ".join(f'"nats-route://{HOST}:{p}"' for p in routes)
    return (
        f"server_name: {name}\n"
        f"http: {HOST}:{monitor_port}\n"
        f'jetstream {{ store_dir: "{store}", max_memory_store: 64MB, max_file_store: 1GB }}\n'
        f"cluster {{\n  name: {cluster}\n  listen: {HOST}:{route_port}\n  routes: [{route_urls}]\n}}\n"
    )


def node_args(name: str, store: Path, route_port: int, monitor_port: int, routes: list[str]) -> list[str]:
    """Flags that make a shared config file (``NatsCluster.config``) one node of a loopback cluster."""
    return [
        *("--name", name, "-sd", str(store), "-m", str(monitor_port)),
        *("--cluster", f"nats://{HOST}:{route_port}", "--routes", ",".join(routes)),
    ]


@dataclass
class NatsCluster:
    """``config``: one config file for every node (e.g. deploy/nats/cluster/node.conf) instead of the
    generated ones; node name, ports, store and routes (with ``route_auth`` as ``user:password``) are then
    given as flags, which override the file."""

    root: Path
    size: int = 3
    name: str = "bastion-test"
    config: Path | None = None
    route_auth: str = ""
    nodes: list[ClusterNode] = field(default_factory=list)

    @property
    def url(self) -> str:
        """Every node's client URL, comma-separated (the form ``BASTION_NATS_URL`` takes)."""
        return ",".join(n.url for n in self.nodes)

    def node(self, name: str) -> ClusterNode:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(f"no node {name!r} in {[n.name for n in self.nodes]}")

    def start(self, timeout: float = 30.0, attempts: int = 3) -> NatsCluster:
        """Start every node; a node that finds one of its ports taken (another process bound it between
        choosing and starting) makes the whole cluster start again on fresh ports."""
        for attempt in range(1, attempts + 1):
            route_ports = [free_port(HOST) for _ in range(self.size)]
            self.nodes = [
                self._node(f"n{i + 1}", port, [p for p in route_ports if p != port])
                for i, port in enumerate(route_ports)
            ]
            try:
                for n in self.nodes:
                    n.server.start()
                self.wait_for_meta_leader(timeout)
                return self
            except NatsServerError as exc:
                self.stop()
                if "already in use" not in str(exc) or attempt == attempts:
                    raise
                self._clear()
            except BaseException:
                self.stop()
                raise
        raise AssertionError("unreachable")

    def _clear(self) -> None:
        """Forget the failed try's nodes: their stores and logs, so the next try starts clean."""
        for n in self.nodes:
            shutil.rmtree(self.root / n.name, ignore_errors=True)

    def _node(self, name: str, route_port: int, others: list[int]) -> ClusterNode:
        folder = self.root / name
        folder.mkdir(parents=True, exist_ok=True)
        monitor_port, store, log = free_port(HOST), folder / "js", folder / "nats.log"
        if self.config is None:
            config = folder / "nats.conf"
            config.write_text(node_config(name, self.name, store, route_port, monitor_port, others))
            server = NatsServer(store_dir=store, config=config, log_file=log)
        else:
            auth = f"{self.route_auth}@" if self.route_auth else ""
            routes = [f"nats-route://{auth}{HOST}:{p}" for p in others]
            args = node_args(name, store, route_port, monitor_port, routes)
            server = NatsServer(store_dir=store, config=self.config, extra_args=args, log_file=log)
        return ClusterNode(name, server, route_port, monitor_port)

    def meta_leader(self) -> str | None:
        """The meta leader's name if every running node knows it and sees the whole cluster, else None."""
        leaders = set()
        for n in self.nodes:
            if not n.running:
                continue
            jsz = n.monitor("/jsz")
            meta = (jsz or {}).get("meta_cluster") or {}
            if not meta.get("leader") or meta.get("cluster_size") != self.size:
                return None
            leaders.add(meta["leader"])
        return leaders.pop() if len(leaders) == 1 else None

    def wait_for_meta_leader(self, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for n in self.nodes:
                if n.server.process is not None and n.server.process.poll() is not None:
                    raise NatsServerError(f"node {n.name} exited:\n{self.log_tail(n.name)}")
            leader = self.meta_leader()
            if leader and all(n.monitor("/healthz?js-enabled-only=true") for n in self.nodes if n.running):
                return leader
            time.sleep(0.1)
        raise TimeoutError(
            f"no JetStream meta leader within {timeout}s:\n{self.log_tail(self.nodes[0].name)}"
        )

    def stop_node(self, name: str) -> None:
        self.node(name).server.stop()

    def log_tail(self, name: str, lines: int = 15) -> str:
        log = self.root / name / "nats.log"
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""

    def stop(self) -> None:
        for n in self.nodes:
            n.server.stop()
