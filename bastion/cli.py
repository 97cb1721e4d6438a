"""The `bastion` command. Each service contributes its own Typer sub-app; this module only wires them."""

from __future__ import annotations

import typer

from bastion import contracts_tool, up

app = typer.Typer(
    name="bastion",
    help="Bastion: systematic trading over NATS. Run `bastion up` to start everything.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(contracts_tool.app, name="contracts")
app.command(name="up")(up.up)

# Sub-apps: (name, module with a Typer `app`). One line per service keeps merges trivial.
SUBCOMMANDS: list[tuple[str, str]] = [
    ("feed", "services.marketdata.cli"),
    ("analytics", "services.analytics.cli"),
    ("users", "services.auth.cli"),
    ("strategies", "services.strategy.cli"),
]


def _register() -> None:
    import importlib

    for name, module in SUBCOMMANDS:
        app.add_typer(importlib.import_module(module).app, name=name)


_register()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
