"""Tables of the operator commands (``bastion streams ...``, ``bastion status``): cells wrap in a narrow
terminal instead of being cut, and a pipe or file gets whole rows."""

from __future__ import annotations

import os

from rich.console import Console
from rich.table import Table


def table(*headers: str) -> Table:
    """A table whose cells wrap in a narrow terminal instead of being cut: a name is typed back."""
    made = Table()
    for header in headers:
        made.add_column(header, overflow="fold")
    return made


def show(out: Console, made: Table) -> None:
    """Print ``made`` to fit the terminal; into a pipe or file (no terminal, no ``COLUMNS``) at its full
    width, a row a line, so that ``grep`` and scripts see whole rows."""
    if out.is_terminal or os.environ.get("COLUMNS"):
        out.print(made)
    else:
        full = out.measure(made, options=out.options.update(max_width=10_000)).maximum
        Console(file=out.file, width=full, soft_wrap=True).print(made)
