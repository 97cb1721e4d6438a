"""`bastion up`: the whole platform on one machine.

1. creates ``.bastion/`` (state), per-service NATS passwords in ``.bastion/secrets/`` (mode 0600, first run);
2. starts ``nats-server`` with JetStream and ``deploy/nats/nats.conf`` (store in ``.bastion/jetstream``);
3. on first start loads a synthetic sample (INFY, TCS, RELIANCE) so data flows;
4. starts every service that exists as a child process (``python -m services.<name>``), logs in
   ``.bastion/logs/``, waits for each heartbeat, prints what runs where;
5. Ctrl-C or SIGTERM stops the services, then NATS, and leaves no process behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import importlib.util
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Annotated

import nats
import nats.js.errors
import typer
from rich.console import Console
from rich.table import Table

from bastion.natsd import NatsServer, NatsServerError, ends_with_parent, free_port, port_in_use
from services.dashboard.settings import display_zone
from shared.runtime.retention import ENV as RETENTION_ENV
from shared.runtime.retention import parse_max_age
from shared.runtime.settings import MAX_AGE_FILE

console = Console(stderr=True)
REPO_ROOT = Path(__file__).resolve().parent.parent
NATS_CONFIG = REPO_ROOT / "deploy" / "nats" / "nats.conf"
NATS_USERS = ("operator", "marketdata", "analytics", "strategy", "execution", "auth", "dashboard")
SAMPLE_SYMBOLS = "INFY,TCS,RELIANCE"


@dataclass(frozen=True)
class ServiceDef:
    name: str
    module: str
    instances: int = 1

    def exists(self) -> bool:
        return importlib.util.find_spec(f"{self.module}.__main__") is not None


#: Start order follows the data flow, so consumers exist before producers publish.
SERVICES: tuple[ServiceDef, ...] = (
    ServiceDef("auth", "services.auth"),
    ServiceDef("execution", "services.execution"),
    ServiceDef("strategy", "services.strategy"),
    ServiceDef("analytics", "services.analytics"),
    ServiceDef("marketdata", "services.marketdata"),
    ServiceDef("dashboard", "services.dashboard"),
)


def new_password() -> str:
    """192 random bits as hex behind a letter: nats-server parses the value of an expanded ``$VAR``, so a
    value that starts with a sign (``-...``) or looks like a number would not be read as a string."""
    return "p" + secrets.token_hex(24)


def _usable_password(value: str) -> bool:
    return len(value) >= 16 and value[0].isalpha() and value.isalnum()


def ensure_secrets(home: Path) -> dict[str, Path]:
    """One random password per NATS user, written once to ``home/secrets/<user>.password`` (0600)."""
    folder = home / "secrets"
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    paths: dict[str, Path] = {}
    for user in NATS_USERS:
        path = folder / f"{user}.password"
        if not path.exists() or not _usable_password(path.read_text().strip()):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(new_password())
        paths[user] = path
    return paths


def nats_env(passwords: dict[str, Path]) -> dict[str, str]:
    env = dict(os.environ)
    for user, path in passwords.items():
        env[f"BASTION_{user.upper()}_PASSWORD"] = path.read_text().strip()
    return env


@dataclass(frozen=True)
class Started:
    instance: str
    where: str
    health_key: str


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    args: list[str]
    user: str
    metrics_port: int
    restarts: list[float] = field(default_factory=list)


@dataclass
class Platform:
    home: Path
    nats_port: int
    dashboard_port: int
    strategy_workers: int
    sample_bars: int
    children: list[Child] = field(default_factory=list)
    nats: NatsServer | None = None
    tz: str = "UTC"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    def service_env(self, user: str, instance: str, metrics_port: int) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
        env.update(
            BASTION_HOME=str(self.home),
            BASTION_NATS_URL=self.nats.url if self.nats else "",
            BASTION_NATS_USER=user,
            BASTION_NATS_PASSWORD_FILE=str(self.home / "secrets" / f"{user}.password"),
            BASTION_DATA_DIR=str(self.data_dir),
            BASTION_INSTANCE=instance,
            BASTION_METRICS_PORT=str(metrics_port),
            BASTION_DASHBOARD_PORT=str(self.dashboard_port),
            BASTION_DASHBOARD_TZ=self.tz,
            PYTHONUNBUFFERED="1",
        )
        if os.environ.get(RETENTION_ENV, "").strip():  # the one BASTION_* setting passed through
            env[RETENTION_ENV] = os.environ[RETENTION_ENV]
        return env

    def start_nats(self) -> None:
        passwords = ensure_secrets(self.home)
        port = self.nats_port
        if port_in_use(port):
            port = free_port()
            console.print(f"[yellow]port {self.nats_port} is taken; NATS listens on {port} instead[/]")
        self.nats = NatsServer(
            store_dir=self.home / "jetstream",
            port=port,
            config=NATS_CONFIG,
            extra_args=["-sd", str(self.home / "jetstream")],
            log_file=self.home / "logs" / "nats.log",
            ends_with_parent=True,
        )
        (self.home / "logs").mkdir(parents=True, exist_ok=True)
        old = os.environ.copy()
        os.environ.update(nats_env(passwords))
        try:
            self.nats.start()
        finally:
            os.environ.clear()
            os.environ.update(old)
        (self.home / "nats-url").write_text(self.nats.url)
        (self.home / MAX_AGE_FILE).write_text(os.environ.get(RETENTION_ENV, "").strip() + "\n")

    def spawn(self, name: str, args: list[str], user: str, instance: str, metrics_port: int) -> Child:
        log = self.home / "logs" / f"{instance}.log"
        env = self.service_env(user, instance, metrics_port)
        if user == "strategy":  # a stable worker name: its DuckDB file and durable consumers
            env["BASTION_STRATEGY_WORKER"] = instance.removeprefix("strategy").lstrip("-") or "1"
        with open(log, "ab") as out:  # the child keeps its own copy of the descriptor
            proc = subprocess.Popen(
                args,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=REPO_ROOT,
                start_new_session=True,  # Ctrl-C and a closed terminal reach bastion up, which stops them
                preexec_fn=ends_with_parent(),  # and if it is killed, they stop too (main thread only)
            )
        child = Child(instance, proc, log, args, user, metrics_port)
        self.children.append(child)
        return child

    def supervise(self, max_restarts: int = 5, window: float = 60.0) -> None:
        """Restart a service that died (a crash must not stop trading for good); give up when one keeps
        dying (``max_restarts`` within ``window`` seconds)."""
        for index, child in enumerate(list(self.children)):
            code = child.process.poll()
            if code is None:
                continue
            now = time.monotonic()
            recent = [t for t in child.restarts if now - t < window]
            if len(recent) >= max_restarts:
                raise RuntimeError(f"{child.name} keeps exiting (code {code}); see {child.log}")
            console.print(f"[yellow]{child.name} exited with code {code}; restarting (log: {child.log})[/]")
            self.children.remove(child)
            fresh = self.spawn(child.name, child.args, child.user, child.name, child.metrics_port)
            fresh.restarts = [*recent, now]
            self.children.remove(fresh)
            self.children.insert(index, fresh)
            self.write_state()

    def load_sample_if_new(self) -> None:
        marker = self.home / "sample-loaded"
        if marker.exists() or self.sample_bars <= 0:
            return
        console.print(f"loading a synthetic sample: {SAMPLE_SYMBOLS}, {self.sample_bars} bars each ...")
        args = [sys.executable, "-m", "bastion", "feed", "simulate", "--symbols", SAMPLE_SYMBOLS]
        args += ["--bars", str(self.sample_bars), "--seed", "7", "--interval", "1m"]
        child = self.spawn("sample", args, "marketdata", "sample", 0)
        code = child.process.wait(timeout=600)
        self.children.remove(child)
        if code != 0:
            raise RuntimeError(f"sample load failed (exit {code}); see {child.log}")
        marker.write_text("1")

    def ensure_admin(self) -> None:
        """First start: create user ``admin`` with a random password, print it once, keep it in
        ``admin-password`` (0600) so the operator can copy it later."""
        if not SERVICES[0].exists():
            return
        from services.auth.cli import ensure_admin

        password = ensure_admin(self.data_dir)
        if password is None:
            return
        path = self.home / "admin-password"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(password + "\n")
        console.print(
            f"[bold]created user admin[/] with password [bold]{password}[/] (also in {path}, mode 0600)"
        )

    def start_services(self) -> list[Started]:
        started: list[Started] = []
        metrics_port = 9101
        for svc in SERVICES:
            if not svc.exists():
                continue
            count = self.strategy_workers if svc.name == "strategy" else svc.instances
            for i in range(count):
                instance = svc.name if count == 1 else f"{svc.name}-{i + 1}"
                while port_in_use(metrics_port):  # another process holds it: take the next one
                    metrics_port += 1
                self.spawn(svc.name, [sys.executable, "-m", svc.module], svc.name, instance, metrics_port)
                health = f"health.{svc.name}"
                if svc.name == "strategy":
                    health = f"health.strategy.{i + 1}"
                where = f"metrics :{metrics_port}"
                if svc.name == "dashboard":
                    where = f"http://127.0.0.1:{self.dashboard_port}"
                started.append(Started(instance, where, health))
                metrics_port += 1
        return started

    async def wait_healthy(self, keys: list[str], timeout: float = 45.0) -> None:
        url = self.nats.url if self.nats else ""
        password = (self.home / "secrets" / "operator.password").read_text().strip()
        nc = await nats.connect(url, user="operator", password=password)
        try:
            js = nc.jetstream()
            deadline = time.monotonic() + timeout
            waiting = set(keys)
            while waiting and time.monotonic() < deadline:
                self.check_children()
                try:
                    kv = await js.key_value("SNAPSHOTS")
                    for key in list(waiting):
                        with contextlib.suppress(Exception):  # no heartbeat yet
                            entry = await kv.get(key)
                            if entry.value and json.loads(entry.value).get("status") == "ok":
                                waiting.discard(key)
                except nats.js.errors.BucketNotFoundError:
                    pass  # the bucket appears with the first service
                await asyncio.sleep(0.2)
            if waiting:
                raise RuntimeError(f"no heartbeat within {timeout:.0f}s from: {', '.join(sorted(waiting))}")
        finally:
            await nc.close()

    def check_children(self) -> None:
        for child in self.children:
            code = child.process.poll()
            if code is not None:
                tail = child.log.read_text(errors="replace").splitlines()[-15:]
                raise RuntimeError(f"{child.name} exited with code {code}:\n" + "\n".join(tail))

    def stop(self) -> None:
        # A second Ctrl-C while stopping must not leave nats-server or a service behind.
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
        for child in reversed(self.children):
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for child in self.children:
            remaining = max(0.1, deadline - time.monotonic())
            try:
                child.process.wait(remaining)
            except subprocess.TimeoutExpired:
                os.killpg(child.process.pid, signal.SIGKILL)
                child.process.wait(5)
        self.children.clear()
        if self.nats is not None:
            self.nats.stop()
        (self.home / "up.json").unlink(missing_ok=True)

    def write_state(self) -> None:
        state = {
            "pid": os.getpid(),
            "nats_url": self.nats.url if self.nats else None,
            "nats_pid": self.nats.process.pid if self.nats and self.nats.process else None,
            "children": {c.name: c.process.pid for c in self.children},
        }
        (self.home / "up.json").write_text(json.dumps(state, indent=2))


DEFAULT_HOME = Path(".bastion")


def stop_on_signals(handler: Callable[[int, FrameType | None], None]) -> None:
    """``handler`` for SIGTERM (``kill``) and SIGHUP (the terminal closed), beside Ctrl-C's SIGINT; not for
    a SIGHUP this process was started ignoring: under ``nohup`` it runs on after a logout."""
    signal.signal(signal.SIGTERM, handler)
    if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:
        signal.signal(signal.SIGHUP, handler)


def hold_home(home: Path) -> IO[str] | None:
    """An exclusive lock on ``home`` (``up.lock``), held while the returned file stays open: the kernel
    drops it when this process ends, however it ends. None when another ``bastion up`` holds it: a second
    one would start a second nats-server on the same JetStream store (which can damage it) and remove the
    first one's ``up.json`` when it stopped."""
    handle = (home / "up.lock").open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def _holder(home: Path) -> str:
    try:
        state = json.loads((home / "up.json").read_text())
        return f" (pid {int(state['pid'])}, NATS {state['nats_url']})"
    except (OSError, ValueError, KeyError, TypeError):
        return ""


#: Synthetic one-minute bars per symbol that the first start loads (README: Quickstart).
SAMPLE_BARS = 500


def up(
    home: Annotated[Path, typer.Option(help="State folder: data, logs, secrets, JetStream")] = DEFAULT_HOME,
    nats_port: Annotated[
        int, typer.Option(min=1, max=65535, help="NATS port; the next free one is used if taken")
    ] = 4222,
    dashboard_port: Annotated[
        int, typer.Option(min=1, max=65535, help="Dashboard HTTP port; the next free one is used if taken")
    ] = 8080,
    strategy_workers: Annotated[int, typer.Option(min=1, max=32, help="Strategy worker processes")] = 1,
    sample_bars: Annotated[
        int, typer.Option(min=0, help="Synthetic bars per symbol on first start")
    ] = SAMPLE_BARS,
    tz: Annotated[
        str, typer.Option("--tz", help="Time zone the dashboard shows times in, e.g. Asia/Kolkata")
    ] = "UTC",
) -> None:
    """Start NATS and every service; Ctrl-C stops everything."""
    try:
        display_zone(tz, "--tz")
        parse_max_age(os.environ.get(RETENTION_ENV, ""))
    except ValueError as exc:
        console.print(f"[red]error:[/] {exc}", soft_wrap=True)
        raise typer.Exit(2) from None
    home = home.resolve()
    try:
        home.mkdir(parents=True, exist_ok=True)
        held = hold_home(home)
    except OSError as exc:
        console.print(f"[red]error:[/] cannot use --home {home}: {exc.strerror}", soft_wrap=True)
        raise typer.Exit(2) from None
    if held is None:
        console.print(
            f"[red]error:[/] bastion up already runs with --home {home}{_holder(home)}; stop it first"
            " (Ctrl-C in its terminal), or give another --home",
            soft_wrap=True,
        )
        raise typer.Exit(1)
    if port_in_use(dashboard_port):
        taken = dashboard_port
        dashboard_port = free_port()
        console.print(f"[yellow]port {taken} is taken; the dashboard uses {dashboard_port} instead[/]")
    platform = Platform(home, nats_port, dashboard_port, strategy_workers, sample_bars, tz=tz.strip())
    stopping = False

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        raise KeyboardInterrupt

    stop_on_signals(on_signal)
    code = 0
    try:
        platform.start_nats()
        platform.load_sample_if_new()
        platform.ensure_admin()
        started = platform.start_services()
        platform.write_state()
        asyncio.run(platform.wait_healthy(sorted({s.health_key for s in started})))
        table = Table(title="Bastion is up")
        table.add_column("component")
        table.add_column("where")
        table.add_row("nats (JetStream)", platform.nats.url if platform.nats else "")
        for item in started:
            table.add_row(item.instance, item.where)
        table.add_row("state", str(home))
        console.print(table)
        console.print("[bold green]ready[/] - press Ctrl-C to stop")
        while True:
            platform.supervise()
            time.sleep(0.5)
    except KeyboardInterrupt:
        console.print("stopping ...")
    except (NatsServerError, RuntimeError) as exc:
        console.print(f"[red]error:[/] {exc}")
        code = 1
    except OSError as exc:  # a home it may not write in: its secrets, logs, data
        console.print(f"[red]error:[/] {exc.strerror}: {exc.filename} (in --home {home})", soft_wrap=True)
        code = 1
    finally:
        platform.stop()
        held.close()  # the home is free for the next bastion up
        console.print("stopped")
    if code:
        raise typer.Exit(code)
