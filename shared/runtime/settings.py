"""Runtime settings read from the environment (the same variables in `bastion up` and docker compose).

| variable | meaning | default |
|---|---|---|
| BASTION_NATS_URL | NATS server URL(s), comma-separated | nats://127.0.0.1:4222 |
| BASTION_NATS_USER | this service's NATS user | none (anonymous) |
| BASTION_NATS_PASSWORD | its password | none |
| BASTION_NATS_PASSWORD_FILE | file holding the password (docker secrets) | none |
| BASTION_DATA_DIR | folder of the service's DuckDB file | .bastion/data |
| BASTION_METRICS_PORT | Prometheus metrics port; 0 disables | 0 |
| BASTION_STREAM_REPLICAS | replicas of the streams and KV it creates (3 on a 3-node cluster) | 1 |
| BASTION_STREAM_MAX_AGE | how long streams keep messages (``shared.runtime.retention``) | 30d or forever |
| BASTION_INSTANCE | instance name (heartbeat key suffix for scaled workers) | hostname-pid |
| BASTION_LOG_LEVEL | debug, info, warning, error | info |
| BASTION_HOME | local state folder of `bastion up` | .bastion |
| BASTION_DOTENV | docker compose's variables file, read by CLI commands for the stream ages | .env |

When a variable is unset, the files `bastion up` writes are used: ``$BASTION_HOME/nats-url`` for the URL,
``$BASTION_HOME/secrets/<service>.password`` (user ``<service>``) for credentials and
``$BASTION_HOME/stream-max-age`` for the stream ages it started the services with, so `bastion` CLI commands
run beside a running `bastion up` find the broker, and judge the streams' ages, without any set-up. Without
that file, CLI commands read ``BASTION_STREAM_MAX_AGE`` from docker compose's ``.env`` file in the current
directory (``BASTION_DOTENV`` names another), so in the checkout they judge the streams' ages as the compose
deployment set them. Services never read it: compose gives them their variables.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from shared.runtime.retention import DEFAULT_MAX_AGE, parse_max_age

#: the file in ``$BASTION_HOME`` that holds the BASTION_STREAM_MAX_AGE `bastion up` gave its services
MAX_AGE_FILE = "stream-max-age"
#: docker compose's variables file, in the directory it runs in (the checkout), read for the stream ages
DOTENV = ".env"


def dotenv_value(path: Path, name: str) -> str | None:
    """The value of ``name`` in a docker compose ``.env`` file (``NAME=value``, optionally quoted; ``#``
    starts a comment line, or an unquoted value's comment after a space), or None when it is not there."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    for raw in lines:
        line = raw.strip().removeprefix("export ").strip()
        key, sep, value = line.partition("=")
        if line.startswith("#") or not sep or key.strip() != name:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            return value[1:-1]
        return value.split(" #", 1)[0].strip()
    return None


class SettingsError(ValueError):
    """A runtime variable with a value that cannot be used; the message names the variable."""


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def whole_number_env(name: str, default: int, *, low: int = 1, high: int | None = None) -> int:
    """``name`` as a whole number in ``low..high`` (``default`` if unset or blank), else ``SettingsError``."""
    raw = _env(name)
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit()) or int(raw) < low or (high is not None and int(raw) > high):
        bounds = f">= {low}" if high is None else f"{low}..{high}"
        raise SettingsError(f"{name} must be a whole number {bounds}, not {raw!r}")
    return int(raw)


@dataclass(frozen=True)
class RuntimeSettings:
    service: str
    nats_url: str = "nats://127.0.0.1:4222"
    nats_user: str | None = None
    nats_password: str | None = field(default=None, repr=False)
    data_dir: Path = Path(".bastion/data")
    metrics_port: int = 0
    stream_replicas: int = 1
    stream_max_age: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_MAX_AGE))
    instance: str = ""
    log_level: str = "info"

    @classmethod
    def from_env(cls, service: str, user: str | None = None) -> RuntimeSettings:
        """Settings of ``service`` from the environment; ``user`` picks the NATS user of the local
        fallback (defaults to the service's own)."""
        home = Path(_env("BASTION_HOME", ".bastion"))
        nats_user = _env("BASTION_NATS_USER") or None
        password = _env("BASTION_NATS_PASSWORD") or None
        password_file = _env("BASTION_NATS_PASSWORD_FILE")
        local_secret = home / "secrets" / f"{user or service}.password"
        if not nats_user and not password_file and local_secret.exists():
            nats_user, password_file = user or service, str(local_secret)
        if password_file:
            password = Path(password_file).read_text().strip()
        url = _env("BASTION_NATS_URL")
        if not url and (home / "nats-url").exists():
            url = (home / "nats-url").read_text().strip()
        port = _env("BASTION_METRICS_PORT", "0")
        if not port.isdigit():
            raise SettingsError(f"BASTION_METRICS_PORT must be a port number, not {port!r}")
        replicas = whole_number_env("BASTION_STREAM_REPLICAS", 1)  # JetStream allows up to 5
        ages, where = _env("BASTION_STREAM_MAX_AGE"), ""
        if not ages and (home / MAX_AGE_FILE).exists():  # what `bastion up` started the services with
            ages, where = (home / MAX_AGE_FILE).read_text().strip(), f" (in {home / MAX_AGE_FILE})"
        elif not ages and service == "cli":  # a command in a docker compose checkout: what compose gave
            dotenv = Path(_env("BASTION_DOTENV") or DOTENV)
            if (found := dotenv_value(dotenv, "BASTION_STREAM_MAX_AGE")) is not None:
                ages, where = found, f" (in {dotenv.resolve()})"
        try:
            max_age = parse_max_age(ages)
        except ValueError as exc:
            raise SettingsError(f"{exc}{where}") from None
        return cls(
            service=service,
            nats_url=url or "nats://127.0.0.1:4222",
            nats_user=nats_user,
            nats_password=password,
            data_dir=Path(_env("BASTION_DATA_DIR") or str(home / "data")),
            metrics_port=int(port),
            stream_replicas=replicas,
            stream_max_age=max_age,
            instance=_env("BASTION_INSTANCE") or f"{socket.gethostname()}-{os.getpid()}",
            log_level=_env("BASTION_LOG_LEVEL", "info").lower(),
        )

    @property
    def servers(self) -> list[str]:
        """The URLs of ``nats_url`` (one per cluster node), as ``nats.connect`` takes them."""
        return [s.strip() for s in self.nats_url.split(",") if s.strip()]

    def db_path(self, name: str | None = None) -> Path:
        """Path of this service's DuckDB file (``<data_dir>/<name or service>.duckdb``)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return self.data_dir / f"{name or self.service}.duckdb"
