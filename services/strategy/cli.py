"""``bastion strategies ...``: list the registered strategies and check a strategies config."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from services.strategy.config import load_config
from services.strategy.domain.registry import StrategyConfigError, available, describe_params

app = typer.Typer(help="Strategies: list them, check a strategies config.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)


@app.command("list")
def list_strategies() -> None:
    """Every strategy (built-in and plugin) with its params and their defaults."""
    try:
        table_of = available()
    except StrategyConfigError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    table = Table(title="Strategies")
    for column in ("strategy", "insights", "rule", "params (default)"):
        table.add_column(column)
    for name, cls in table_of.items():
        params = "\n".join(
            f"{p.name}: {p.type} = {p.default!r}  {p.description}" for p in describe_params(cls)
        )
        table.add_row(name, "yes" if cls.requires_insights else "no", cls.description, params or "-")
    out.print(table)


@app.command("check")
def check(
    config: Annotated[Path, typer.Argument(help="Strategies config file")] = Path("deploy/strategies.yaml"),
) -> None:
    """Validate a strategies config: known strategies, good params, unique ids."""
    try:
        instances = load_config(config)
    except StrategyConfigError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    for i in instances:
        symbols = "*" if i.symbols == "*" else ",".join(i.symbols)
        out.print(
            f"{i.strategy.instance_id}: {i.strategy.name} {i.strategy.params.model_dump()} on {symbols}"
        )
    out.print(f"[green]ok: {len(instances)} instance(s)[/green]")
