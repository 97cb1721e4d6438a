"""The deployment files, checked offline (no Docker engine here): compose spec, commands, env, NATS config."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from bastion.natsd import nats_server_binary
from bastion.up import NATS_USERS

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
CODE = (
    "\n".join(p.read_text() for d in ("bastion", "services", "shared") for p in (ROOT / d).rglob("*.py"))
    + (ROOT / "deploy" / "entrypoint.sh").read_text()
    + (ROOT / "deploy" / "nats" / "nats.conf").read_text()
)


def test_compose_file_follows_the_compose_specification() -> None:
    result = subprocess.run(
        [
            str(Path(nats_server_binary()).parent / "check-jsonschema"),
            "--builtin-schema",
            "vendor.compose-spec",
            str(ROOT / "docker-compose.yml"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", sorted(COMPOSE["services"]))
def test_every_compose_command_exists(name: str) -> None:
    command = COMPOSE["services"][name]["command"]
    if command[0] == "nats-server":
        return
    assert command[:2] == ["python", "-m"], command
    assert importlib.util.find_spec(f"{command[2]}.__main__") is not None, f"{command[2]} has no __main__"


def test_every_service_with_an_entry_point_is_in_compose() -> None:
    mains = {p.parent.name for p in (ROOT / "services").glob("*/__main__.py")}
    assert mains <= set(COMPOSE["services"]), mains - set(COMPOSE["services"])


@pytest.mark.parametrize("name", sorted(COMPOSE["services"]))
def test_every_compose_variable_is_read_by_the_code(name: str) -> None:
    for var in COMPOSE["services"][name].get("environment", {}):
        base = re.sub(r"_FILE$", "", var)
        assert var in CODE or base in CODE, f"{name}: {var} is read nowhere"


def test_every_secret_file_is_one_bastion_up_generates() -> None:
    for secret in COMPOSE["secrets"].values():
        user = Path(secret["file"]).name.removesuffix(".password")
        assert user in NATS_USERS


def test_nats_config_is_accepted_by_nats_server() -> None:
    env = dict(os.environ) | {f"BASTION_{u.upper()}_PASSWORD": "x" * 12 for u in NATS_USERS}
    result = subprocess.run(
        [nats_server_binary(), "-t", "-c", str(ROOT / "deploy" / "nats" / "nats.conf")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid" in result.stdout + result.stderr


def test_generated_passwords_are_read_as_strings_by_nats_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bastion.natsd import NatsServer, NatsServerError
    from bastion.up import new_password

    def start(password: str) -> None:
        for user in NATS_USERS:
            monkeypatch.setenv(f"BASTION_{user.upper()}_PASSWORD", password)
        server = NatsServer(
            store_dir=tmp_path / password[:3],
            config=ROOT / "deploy" / "nats" / "nats.conf",
            log_file=tmp_path / "nats.log",
        )
        server.start()
        server.stop()

    # nats-server parses an expanded $VAR: a value starting with "-" is read as a (broken) number.
    with pytest.raises(NatsServerError, match="could not be parsed"):
        start("-" + new_password())
    assert all(new_password()[0].isalpha() and new_password().isalnum() for _ in range(200))
    start(new_password())
