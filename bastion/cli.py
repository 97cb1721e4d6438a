"""The `bastion` command. Each service contributes its own Typer sub-app; this module only wires them, and
imports each one when its command is used."""

from __future__ import annotations

import importlib
import inspect
import sys
from typing import Any

import typer
from typer.core import TyperGroup

#: Every command, in the order ``bastion --help`` lists them: name -> "module:attribute", a Typer sub-app or a
#: command function. One line per service's sub-app.
COMMANDS: dict[str, str] = {
    "up": "bastion.up:up",
    "status": "bastion.status:status",
    "backtest": "bastion.backtest.cli:backtest",
    "contracts": "bastion.contracts_tool:app",
    "streams": "bastion.streams:app",
    "feed": "services.marketdata.cli:app",
    "analytics": "services.analytics.cli:app",
    "users": "services.auth.cli:app",
    "strategies": "services.strategy.cli:app",
    "risk": "services.execution.cli:risk_app",
    "audit": "services.execution.cli:audit_app",
}


class LazyGroup(TyperGroup):
    """The root group. A command's module is imported only when the command is run or listed (``bastion
    --help``), so ``bastion risk status`` does not first import pandas, numba and DuckDB for ``backtest``:
    that took ~0.8 s of every command's start."""

    # ``Any``: the click types are typer's own (vendored) ones, not a public module's
    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in COMMANDS and cmd_name not in self.commands:
            self.add_command(load(cmd_name), cmd_name)
        return super().get_command(ctx, cmd_name)


def load(name: str) -> Any:
    """The click command of ``COMMANDS[name]``, its help reflowed (``_reflow``)."""
    module, _, attr = COMMANDS[name].partition(":")
    target: Any = getattr(importlib.import_module(module), attr)
    if not isinstance(target, typer.Typer):  # a command function: a one-command app gives its command
        single = typer.Typer()
        single.command(name=name)(target)
        target = single
    _reflow(target)
    command = typer.main.get_command(target)
    command.name = name
    return command


app = typer.Typer(
    name="bastion",
    cls=LazyGroup,
    help="Bastion: systematic trading over NATS. Run `bastion up` to start everything.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root() -> None:  # a callback makes the root a group (its commands come from ``LazyGroup``)
    pass


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


def main() -> None:
    try:
        app()
    except Exception as exc:
        from shared.runtime.duck import DatabaseUnusable  # here, not at the top: it imports DuckDB
        from shared.runtime.settings import SettingsError

        if isinstance(exc, SettingsError):  # a BASTION_* variable no command can run with
            print(f"error: {exc}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None
        if isinstance(exc, DatabaseUnusable):  # a damaged or foreign DuckDB file, whichever command opened it
            print(f"error: {exc}", file=sys.stderr, flush=True)
            raise SystemExit(1) from None
        raise


if __name__ == "__main__":
    main()
