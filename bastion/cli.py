"""The `bastion` command. Each service contributes its own Typer sub-app; this module only wires them."""

from __future__ import annotations

import inspect
import sys

import typer

from bastion import contracts_tool, status, streams, up
from bastion.backtest import cli as backtest_cli
from shared.runtime.duck import DatabaseUnusable
from shared.runtime.settings import SettingsError

app = typer.Typer(
    name="bastion",
    help="Bastion: systematic trading over NATS. Run `bastion up` to start everything.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(contracts_tool.app, name="contracts")
app.add_typer(streams.app, name="streams")
app.command(name="up")(up.up)
app.command(name="status")(status.status)
app.command(name="backtest")(backtest_cli.backtest)

# Sub-apps: (name, "module" with a Typer `app`, or "module:attribute"). One line per service.
SUBCOMMANDS: list[tuple[str, str]] = [
    ("feed", "services.marketdata.cli"),
    ("analytics", "services.analytics.cli"),
    ("users", "services.auth.cli"),
    ("strategies", "services.strategy.cli"),
    ("risk", "services.execution.cli:risk_app"),
    ("audit", "services.execution.cli:audit_app"),
]


def _register() -> None:
    import importlib

    for name, target in SUBCOMMANDS:
        module, _, attr = target.partition(":")
        app.add_typer(getattr(importlib.import_module(module), attr or "app"), name=name)


_register()


def _one_line_paragraphs(doc: str) -> str:
    """``doc`` with each paragraph on one line. Typer joins the lines of a command's first paragraph only
    and prints the others with the docstring's line breaks, mid-sentence; a paragraph that is a list or
    indented stays as it is."""
    kept = ("-", "*", " ", "\b")

    def flowed(paragraph: str) -> str:
        lines = paragraph.splitlines()
        return paragraph if any(line.startswith(kept) for line in lines) else " ".join(paragraph.split())

    return "\n\n".join(flowed(p) for p in inspect.cleandoc(doc).split("\n\n"))


def _reflow(typer_app: typer.Typer) -> None:
    """Give every command of ``typer_app`` and its sub-apps its docstring as one-line paragraphs."""
    for command in typer_app.registered_commands:
        doc = command.help or (inspect.getdoc(command.callback) if command.callback else None)
        if doc:
            command.help = _one_line_paragraphs(doc)
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            _reflow(group.typer_instance)


_reflow(app)


def main() -> None:
    try:
        app()
    except SettingsError as exc:  # a BASTION_* variable no command can run with
        print(f"error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    except DatabaseUnusable as exc:  # a damaged or foreign DuckDB file, whichever command opened it
        print(f"error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
