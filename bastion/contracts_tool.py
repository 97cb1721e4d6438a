"""`bastion contracts export|check`: JSON Schemas and the AsyncAPI 3 document, and compatibility.

Schemas live in ``shared/contracts/schemas/<schema>.v<major>.json``. ``check`` fails when the models
drift from the checked-in files (run ``make schemas``), and ``breaking_changes`` names what a change
breaks (a removed, renamed, retyped or newly required field) so that such a change must come with a
major version bump, which writes a new ``.v<major+1>.json`` file beside the old one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
import yaml

import shared.contracts as contracts
from shared.contracts import ALL_CONTRACTS, Contract

CONTRACTS_DIR = Path(contracts.__file__).parent
SCHEMA_DIR = CONTRACTS_DIR / "schemas"
ASYNCAPI_FILE = CONTRACTS_DIR / "asyncapi.yaml"

#: contract -> (channel address, who sends it, description)
CHANNELS: dict[type[Contract], tuple[str, str, str]] = {
    contracts.OHLCVBar: ("md.v1.bar.{symbol}", "marketdata", "OHLCV bars, one subject per symbol"),
    contracts.InsightEvent: ("analytics.v1.insight.{symbol}", "analytics", "Confluence insight per bar"),
    contracts.SignalEvent: ("strategy.v1.signal.{symbol}", "strategy", "Strategy intent (no size/price)"),
    contracts.RiskDecision: ("risk.v1.decision.{symbol}", "execution", "Approved/rejected, with reasons"),
    contracts.OrderEvent: ("exec.v1.order.{symbol}", "execution", "Order state changes"),
    contracts.TradeEvent: ("exec.v1.trade.{symbol}", "execution", "Fills"),
    contracts.PositionSnapshot: (
        "exec.v1.positions",
        "nobody yet (reserved)",
        "Positions, cash and equity: not published yet; the KV snapshot execution.positions carries them",
    ),
    contracts.RiskCommand: ("risk.v1.command", "bastion CLI (admin)", "Kill switch: halt/resume"),
    contracts.RiskStateChanged: ("risk.v1.state", "execution", "Trading state changes"),
    contracts.AuditRecord: ("audit.v1.exec", "execution", "Hash-chained audit rows (bastion audit verify)"),
    contracts.AuthAudit: ("audit.v1.auth", "auth", "Logins, failures, lockouts, user changes"),
    contracts.DeadLetter: ("dlq.v1.{service}", "every consumer", "Messages a service could not process"),
    contracts.LoginRequest: ("auth.v1.login", "dashboard, CLI", "Request; reply is a SessionReply"),
    contracts.TokenRequest: ("auth.v1.{verify|logout|whoami}", "any service", "Request; SessionReply"),
    contracts.SessionReply: ("_INBOX (reply)", "auth", "Reply to auth.v1.* requests"),
    contracts.RecomputeInsights: (
        "ctl.v1.analytics.recompute",
        "CLI (bastion analytics update)",
        "Request; reply is InsightsRecomputed",
    ),
    contracts.InsightsRecomputed: ("_INBOX (reply)", "analytics", "Reply to ctl.v1.analytics.recompute"),
    contracts.UserAdminRequest: (
        "ctl.v1.auth.users",
        "CLI (bastion users, operator only)",
        "Request with an admin session; reply is UserAdminReply",
    ),
    contracts.UserAdminReply: ("_INBOX (reply)", "auth", "Reply to ctl.v1.auth.users"),
    contracts.Heartbeat: ("KV SNAPSHOTS health.<service>", "every service", "Liveness and counters"),
}

app = typer.Typer(help="Event contracts: export JSON Schemas and AsyncAPI, check compatibility.")


def schema_file(model: type[Contract]) -> Path:
    return SCHEMA_DIR / f"{model.SCHEMA}.v{model.major()}.json"


def generate_schema(model: type[Contract]) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True)
    schema["$id"] = f"https://bastion.dev/schemas/{model.SCHEMA}.v{model.major()}.json"
    schema["x-bastion-schema"] = model.SCHEMA
    schema["x-bastion-version"] = model.VERSION
    return schema


def render(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def generate_asyncapi() -> str:
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for model, (address, sender, description) in CHANNELS.items():
        name = model.__name__
        messages[name] = {
            "name": name,
            "title": f"{model.SCHEMA} v{model.VERSION}",
            "contentType": "application/json",
            "payload": {"$ref": f"schemas/{schema_file(model).name}"},
        }
        channel: dict[str, Any] = {
            "address": address,
            "description": description,
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
        }
        params = [p for p in ("symbol", "service") if "{" + p + "}" in address]
        if params:
            channel["parameters"] = {p: {"description": f"the {p}"} for p in params}
        channels[name] = channel
        operations[f"send{name}"] = {
            "action": "send",
            "summary": f"sent by {sender}",
            "channel": {"$ref": f"#/channels/{name}"},
        }
    doc = {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Bastion events",
            "version": "1.0.0",
            "description": "Subjects <domain>.v<major>.<event>.<key> on NATS JetStream. Generated by "
            "`bastion contracts export`; do not edit.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }
    return yaml.safe_dump(doc, sort_keys=True, width=110)


def expected_files() -> dict[Path, str]:
    files = {schema_file(m): render(generate_schema(m)) for m in ALL_CONTRACTS}
    files[ASYNCAPI_FILE] = generate_asyncapi()
    return files


# -- compatibility ------------------------------------------------------------------------------
_IGNORED_KEYS = {"description", "title", "default", "examples"}


def _signature(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _signature(v) for k, v in sorted(node.items()) if k not in _IGNORED_KEYS}
    if isinstance(node, list):
        return [_signature(v) for v in node]
    return node


def _object_changes(where: str, old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    old_req, new_req = set(old.get("required", [])), set(new.get("required", []))
    for name in sorted(old_req):
        if name not in new_props:
            problems.append(f"{where}: required field '{name}' was removed or renamed")
        elif _signature(old_props[name]) != _signature(new_props[name]):
            problems.append(f"{where}: required field '{name}' changed type")
    for name in sorted(new_req - old_req):
        problems.append(f"{where}: field '{name}' is newly required")
    return problems


def breaking_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What in ``new`` breaks consumers or producers of ``old`` (same major version)."""
    problems = _object_changes("root", old, new)
    old_defs, new_defs = old.get("$defs", {}), new.get("$defs", {})
    for name, old_def in sorted(old_defs.items()):
        if name in new_defs:
            problems += _object_changes(name, old_def, new_defs[name])
    return problems


def check_model(model: type[Contract]) -> list[str]:
    """Problems of ``model`` against its checked-in schema (missing file, breaking change, drift)."""
    path = schema_file(model)
    if not path.exists():
        return [f"{model.__name__}: {path.name} is missing; run `make schemas`"]
    old = json.loads(path.read_text())
    new = generate_schema(model)
    problems = [f"{model.__name__} {model.VERSION}: {p}" for p in breaking_changes(old, new)]
    if problems:
        problems.append(f"{model.__name__}: a breaking change needs a major version bump (VERSION = 'N+1.0')")
    elif render(new) != path.read_text():
        problems.append(f"{model.__name__}: {path.name} is out of date; run `make schemas`")
    return problems


@app.command()
def export() -> None:
    """Write shared/contracts/schemas/*.json and shared/contracts/asyncapi.yaml from the models."""
    SCHEMA_DIR.mkdir(parents=True, exist_ok=True)
    breaking = [p for m in ALL_CONTRACTS if schema_file(m).exists() for p in check_model(m) if "major" in p]
    if breaking:
        typer.echo("\n".join(breaking), err=True)
        raise typer.Exit(1)
    for path, text in expected_files().items():
        path.write_text(text)
        typer.echo(f"wrote {path.relative_to(CONTRACTS_DIR.parent.parent)}")


@app.command()
def check() -> None:
    """Fail when a model breaks its checked-in schema or the files are out of date."""
    problems = [p for m in ALL_CONTRACTS for p in check_model(m)]
    if ASYNCAPI_FILE.exists() and ASYNCAPI_FILE.read_text() != generate_asyncapi():
        problems.append("asyncapi.yaml is out of date; run `make schemas`")
    elif not ASYNCAPI_FILE.exists():
        problems.append("asyncapi.yaml is missing; run `make schemas`")
    if problems:
        typer.echo("\n".join(problems), err=True)
        raise typer.Exit(1)
    typer.echo(f"{len(ALL_CONTRACTS)} contracts match their checked-in schemas")
