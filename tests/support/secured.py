"""A real nats-server on the deployed ``deploy/nats/nats.conf``: one user per service, test passwords."""

from __future__ import annotations

import os
from pathlib import Path

from bastion.natsd import NatsServer
from bastion.up import NATS_CONFIG, NATS_USERS

PASSWORDS = {user: f"{user}-secret-password" for user in NATS_USERS}


def start_secured(tmp_path: Path, config: Path = NATS_CONFIG) -> NatsServer:
    """Start it (the config reads the ``BASTION_<USER>_PASSWORD`` variables when the server starts)."""
    saved = dict(os.environ)
    os.environ.update({f"BASTION_{u.upper()}_PASSWORD": p for u, p in PASSWORDS.items()})
    try:
        return NatsServer(
            store_dir=tmp_path / "js", config=config, extra_args=["-sd", str(tmp_path / "js")]
        ).start()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def operator_home(server: NatsServer, home: Path) -> Path:
    """A `bastion up` home beside ``server`` as CLI commands find it: its URL and the operator's password."""
    (home / "secrets").mkdir(parents=True)
    (home / "secrets" / "operator.password").write_text(PASSWORDS["operator"])
    (home / "nats-url").write_text(server.url)
    return home
