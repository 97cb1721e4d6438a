"""The deployment files, checked offline (no Docker engine here): compose spec, commands, env, secrets,
health, volumes, strategy scaling, NATS users, and the commands and variables deploy/README.md names.

Each ``*_problems`` function returns what is wrong with a compose dict (empty when nothing is); the tests run
them on the real file and, to show they can fail, on broken copies."""

from __future__ import annotations

import copy
import importlib.util
import os
import re
import subprocess
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml

from bastion.natsd import nats_server_binary
from bastion.up import NATS_USERS

ROOT = Path(__file__).resolve().parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
NATS_CONF = (ROOT / "deploy" / "nats" / "nats.conf").read_text()
README = (ROOT / "deploy" / "README.md").read_text()
CODE = (
    "\n".join(p.read_text() for d in ("bastion", "services", "shared") for p in (ROOT / d).rglob("*.py"))
    + (ROOT / "deploy" / "entrypoint.sh").read_text()
    + NATS_CONF
    + (ROOT / "deploy" / "nats" / "cluster" / "node.conf").read_text()
)
SCALABLE = "strategy"
#: Variables that would give every replica of a scaled service the same identity (lease key, DuckDB file).
IDENTITY_VARS = ("BASTION_STRATEGY_WORKER", "BASTION_INSTANCE")

Compose = dict[str, Any]
Check = Callable[[Compose], list[str]]


@cache
def cli_root() -> Any:
    """The ``bastion`` command tree (groups have a ``commands`` dict)."""
    from bastion.cli import app

    return typer.main.get_command(app)


def cli_command_exists(words: list[str], *, runnable: bool = True) -> bool:
    """Whether ``bastion <words...>`` names a command (``runnable=False``: or a command group); options and
    arguments after the command are not checked."""
    node = cli_root()
    rest = list(words)
    while rest and not rest[0].startswith("-") and hasattr(node, "commands"):
        found = node.get_command(None, rest[0])  # the root loads its commands when asked (bastion.cli)
        if found is None:
            return False
        node, rest = found, rest[1:]
    if hasattr(node, "commands"):
        return not runnable
    options = {o for param in node.params for o in (*param.opts, *param.secondary_opts)}
    return all(w.split("=")[0] in options for w in rest if w.startswith("-"))


def command_problems(compose: Compose) -> list[str]:
    problems = []
    for name, svc in compose["services"].items():
        command = svc.get("command") or []
        if command[:1] == ["nats-server"]:
            continue
        if command[:2] == ["python", "-m"] and len(command) > 2:
            if (
                importlib.util.find_spec(command[2]) is None
                or not (ROOT / command[2].replace(".", "/") / "__main__.py").exists()
            ):
                problems.append(f"{name}: {command[2]} has no __main__.py")
        elif command[:1] == ["bastion"]:
            if not cli_command_exists(command[1:]):
                problems.append(f"{name}: `{' '.join(command)}` is no bastion command")
        else:
            problems.append(f"{name}: command {command} is neither `python -m services.X` nor `bastion ...`")
    return problems


def env_problems(compose: Compose, code: str = CODE) -> list[str]:
    known = set(re.findall(r"BASTION_[A-Z0-9_]+", code))
    problems = []
    for name, svc in compose["services"].items():
        for var in svc.get("environment", {}):
            if var not in known and var.removesuffix("_FILE") not in known:
                problems.append(f"{name}: {var} is read nowhere in the code")
    return problems


def secret_problems(compose: Compose) -> list[str]:
    declared = compose.get("secrets", {})
    problems = [f"secret {s} has no file" for s, spec in declared.items() if not (spec or {}).get("file")]
    for name, svc in compose["services"].items():
        used = set(svc.get("secrets", []))
        problems += [f"{name}: secret {s} is not declared" for s in sorted(used - set(declared))]
        for var, value in svc.get("environment", {}).items():
            if var.endswith("_FILE") and str(value).startswith("/run/secrets/"):
                if str(value).removeprefix("/run/secrets/") not in used:
                    problems.append(f"{name}: {var}={value} is not one of its secrets")
            elif re.search(r"PASSWORD$|SECRET$", var):
                problems.append(f"{name}: {var} is given in clear, not as a secret file")
    return problems


def health_problems(compose: Compose) -> list[str]:
    problems = []
    for name, svc in compose["services"].items():
        test = (svc.get("healthcheck") or {}).get("test")
        if not test or svc["healthcheck"].get("disable"):
            problems.append(f"{name}: no health check")
        if svc.get("restart") not in {"always", "unless-stopped", "on-failure"}:
            problems.append(f"{name}: restart policy is {svc.get('restart')!r}")
    return problems


def _volume_source(entry: str | dict[str, Any]) -> str:
    return str(entry.get("source", "")) if isinstance(entry, dict) else entry.split(":")[0]


def volume_problems(compose: Compose) -> list[str]:
    declared = set(compose.get("volumes") or {})
    used = {_volume_source(e) for s in compose["services"].values() for e in s.get("volumes", [])}
    problems = [f"volume {v} is declared but used by no service" for v in sorted(declared - used)]
    for name, svc in compose["services"].items():
        for entry in svc.get("volumes", []):
            if _volume_source(entry) not in declared:
                problems.append(f"{name}: volume {entry!r} is not a declared named volume")
    return problems


def scaling_problems(compose: Compose, name: str = SCALABLE) -> list[str]:
    svc = compose["services"][name]
    problems = [f"{name}: {key} is fixed" for key in ("container_name", "hostname") if key in svc]
    for port in svc.get("ports", []):
        spec = port if isinstance(port, dict) else {"published": str(port).rpartition(":")[0]}
        if spec.get("published"):
            problems.append(f"{name}: host port {port!r} is fixed")
    problems += [
        f"{name}: {v} gives every replica one name" for v in IDENTITY_VARS if v in svc.get("environment", {})
    ]
    if any(str(v).endswith(".duckdb") for v in svc.get("environment", {}).values()):
        problems.append(f"{name}: a DuckDB file path is fixed")
    if (svc.get("deploy") or {}).get("replicas") == 1:
        problems.append(f"{name}: deploy.replicas pins it to one replica")
    return problems


def nats_users(conf: str = NATS_CONF) -> set[str]:
    return set(re.findall(r"\{\s*user:\s*([A-Za-z0-9_-]+)\s*,", conf))


def nats_user_problems(compose: Compose, conf: str = NATS_CONF) -> list[str]:
    users = nats_users(conf)
    problems = []
    server_env = next(s for s in compose["services"].values() if s["command"][:1] == ["nats-server"])[
        "environment"
    ]
    for user in sorted(users):
        if f"BASTION_{user.upper()}_PASSWORD_FILE" not in server_env:
            problems.append(f"nats: no password file for NATS user {user}")
    for name, svc in compose["services"].items():
        env = svc.get("environment", {})
        if svc["command"][:1] == ["nats-server"]:
            continue
        user = env.get("BASTION_NATS_USER")
        if user not in users:
            problems.append(f"{name}: BASTION_NATS_USER={user!r} is no user in deploy/nats/nats.conf")
        elif env.get("BASTION_NATS_PASSWORD_FILE") != server_env.get(f"BASTION_{user.upper()}_PASSWORD_FILE"):
            problems.append(f"{name}: its password file is not the one nats-server uses for {user}")
    return problems


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


CHECKS: dict[str, Check] = {
    "commands": command_problems,
    "env": env_problems,
    "secrets": secret_problems,
    "health": health_problems,
    "volumes": volume_problems,
    "scaling": scaling_problems,
    "nats users": nats_user_problems,
}


@pytest.mark.parametrize("check", sorted(CHECKS))
def test_the_compose_file_passes_every_deployment_check(check: str) -> None:
    assert CHECKS[check](COMPOSE) == []


def _set(path: str, value: Any) -> Callable[[Compose], None]:
    def mutate(compose: Compose) -> None:
        *keys, last = path.split("/")
        node = compose
        for key in keys:
            node = node.setdefault(key, {})
        node[last] = value

    return mutate


def _delete(path: str) -> Callable[[Compose], None]:
    def mutate(compose: Compose) -> None:
        *keys, last = path.split("/")
        node = compose
        for key in keys:
            node = node[key]
        del node[last]

    return mutate


BROKEN: list[tuple[str, str, Callable[[Compose], None]]] = [
    (
        "commands",
        "a module without __main__",
        _set("services/analytics/command", ["python", "-m", "services.nope"]),
    ),
    ("commands", "an unknown CLI command", _set("services/analytics/command", ["bastion", "users", "nope"])),
    ("commands", "a shell command", _set("services/analytics/command", ["sh", "-c", "true"])),
    ("env", "a variable nothing reads", _set("services/auth/environment/BASTION_AUTH_TYPO", "1")),
    ("secrets", "an undeclared secret", _set("services/auth/secrets", ["nats_auth", "nats_nope"])),
    ("secrets", "a secret without a file", _set("secrets/nats_auth", {"environment": "X"})),
    ("secrets", "a password file not mounted", _set("services/auth/secrets", [])),
    ("secrets", "a password in clear", _set("services/auth/environment/BASTION_NATS_PASSWORD", "hunter2")),
    ("health", "no health check", _delete("services/analytics/healthcheck")),
    ("health", "a disabled health check", _set("services/analytics/healthcheck", {"disable": True})),
    ("health", "no restart policy", _delete("services/execution/restart")),
    ("health", "restart never", _set("services/execution/restart", "no")),
    ("volumes", "a bind mount", _set("services/auth/volumes", ["./auth:/data"])),
    ("volumes", "an undeclared volume", _set("services/auth/volumes", ["authz:/data"])),
    ("scaling", "a container name", _set("services/strategy/container_name", "strategy")),
    ("scaling", "a fixed host name", _set("services/strategy/hostname", "strategy")),
    ("scaling", "a fixed host port", _set("services/strategy/ports", ["9100:9100"])),
    ("scaling", "a fixed worker name", _set("services/strategy/environment/BASTION_STRATEGY_WORKER", "w1")),
    ("scaling", "a fixed instance name", _set("services/strategy/environment/BASTION_INSTANCE", "s")),
    (
        "nats users",
        "a user not in nats.conf",
        _set("services/analytics/environment/BASTION_NATS_USER", "root"),
    ),
    (
        "nats users",
        "another user's password",
        _set("services/analytics/environment/BASTION_NATS_PASSWORD_FILE", "/run/secrets/nats_auth"),
    ),
    (
        "nats users",
        "a conf user without password",
        _delete("services/nats/environment/BASTION_AUTH_PASSWORD_FILE"),
    ),
]


@pytest.mark.parametrize(("check", "what", "mutate"), BROKEN, ids=[f"{c}: {w}" for c, w, _ in BROKEN])
def test_each_check_fails_on_a_broken_copy(check: str, what: str, mutate: Callable[[Compose], None]) -> None:
    broken = copy.deepcopy(COMPOSE)
    mutate(broken)
    assert CHECKS[check](broken), f"{check} did not notice {what}"


def test_a_scaled_port_without_host_side_is_allowed() -> None:
    compose = copy.deepcopy(COMPOSE)
    compose["services"][SCALABLE]["ports"] = ["9100"]
    assert scaling_problems(compose) == []


def test_strategy_replicas_get_distinct_names_and_duckdb_files_from_their_host_names() -> None:
    from services.strategy.__main__ import worker_name

    names = {worker_name({}, hostname=h) for h in ("3f2a9c1d0b7e", "a81c00e2d4f9", "bastion-strategy-3")}
    assert len(names) == 3
    source = (ROOT / "services" / "strategy" / "__main__.py").read_text()
    assert 'settings.db_path(f"strategy-{worker}")' in source
    assert 'heartbeat_key=f"health.strategy.{worker}"' in source


def test_nats_conf_users_are_the_users_bastion_up_creates() -> None:
    assert nats_users() == set(NATS_USERS)
    assert nats_users("{ user: a, password: $X }\n{ user: b-c, password: $Y }") == {"a", "b-c"}


def test_every_service_with_an_entry_point_is_in_compose() -> None:
    commands = {tuple(s["command"][:3]) for s in COMPOSE["services"].values()}
    mains = {p.parent.name for p in (ROOT / "services").glob("*/__main__.py")}
    assert {m for m in mains if ("python", "-m", f"services.{m}") not in commands} == set()


def test_every_secret_file_is_one_bastion_up_generates() -> None:
    for secret in COMPOSE["secrets"].values():
        user = Path(secret["file"]).name.removesuffix(".password")
        assert user in NATS_USERS


def named_commands(text: str) -> list[str]:
    """Every ``bastion ...`` command line the text names: in inline code (up to its closing backtick) and
    as a line of a fenced block (after any ``VAR=value`` and before a ``#`` comment)."""
    found = re.findall(r"`(?:docker compose [^`]*?)?(bastion [a-z][^`\n]*)", text)
    fenced = re.findall(r"^```[a-z]*\n(.*?)^```", text, flags=re.S | re.M)
    for block in fenced:
        for line in block.splitlines():
            hit = re.match(r"(?:[A-Z_]+=\S+\s+)*(bastion [a-z][^#]*)", line.strip())
            if hit:
                found.append(hit[1])
    return found


def command_words(line: str) -> list[str]:
    """``bastion a b [--x X] c --y`` -> ``["a", "b", "--x", "--y"]``: the command's words, then every option
    named anywhere in the line (arguments and values dropped)."""
    words = []
    for word in line.split()[1:]:
        if not re.fullmatch(r"[a-z][a-z-]*", word):
            break
        words.append(word)
    return words + re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", line)


def readme_problems(text: str, code: str = CODE) -> list[str]:
    """Commands (with their options) and variables the text names that do not exist."""
    problems = [
        f"`{c.strip()}` is no bastion command (or names an option it does not have)"
        for c in named_commands(text)
        if not cli_command_exists(command_words(c), runnable=False)
    ]
    known = set(re.findall(r"BASTION_[A-Z0-9_]+", code))
    for name in sorted(set(re.findall(r"\bBASTION_[A-Z0-9_]*[A-Z0-9]\b", text))):
        if name not in known and name.removesuffix("_FILE") not in known:
            problems.append(f"{name} is read nowhere in the code")
    return problems


def test_the_deploy_readme_names_only_commands_and_variables_that_exist() -> None:
    assert "## A 3-node NATS cluster (R3 streams)" in README
    assert "bastion users create" in README
    assert "BASTION_STREAM_REPLICAS" in README
    assert readme_problems(README) == []


DOCS = sorted(
    str(p.relative_to(ROOT))
    for p in [ROOT / "README.md", *(ROOT / "docs").rglob("*.md"), *(ROOT / "services").glob("*/README.md")]
)


@pytest.mark.parametrize("doc", DOCS)
def test_every_doc_names_only_commands_and_variables_that_exist(doc: str) -> None:
    assert readme_problems((ROOT / doc).read_text()) == []


def test_the_docs_checked_include_the_readme_and_each_service_readme() -> None:
    assert {"README.md", "docs/backtesting.md", "services/execution/README.md"} <= set(DOCS)
    assert len([d for d in DOCS if d.startswith("services/")]) == 6


@pytest.mark.parametrize(
    "text",
    [
        "`bastion users nope`",
        "`bastion users create --nope`",
        "`bastion up --home .bastion-x --sample-barz 0`",
        "```bash\nBASTION_HOME=x bastion feed replay --input A.csv --tzz UTC   # a comment\n```\n",
        "`docker compose run --rm auth bastion userz list`",
        "set `BASTION_NOPE_SECONDS`",
    ],
)
def test_the_readme_check_fails_on_a_wrong_command_or_variable(text: str) -> None:
    assert readme_problems(text)
