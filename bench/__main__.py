"""`make bench`: run every bench/bench_*.py and print one table of their RESULT lines.

Each script prints human-readable figures and, for the table, lines ``RESULT {"name": ..., "value": ...,
"unit": ..., "reference": ..., "ratio": ..., "goal": ...}``. Ratios compare against a reference measured in
the same run, because these machines are noisy.

``python -m bench`` runs them all and also writes the table as Markdown to bench/RESULTS.md (with the date,
the machine and the Python version) for the README. ``python -m bench pipeline strategy`` runs only the
scripts whose names contain one of the words and leaves bench/RESULTS.md alone.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.support import cpu_model

HERE = Path(__file__).resolve().parent
RESULTS_MD = HERE / "RESULTS.md"
COLUMNS = ("benchmark", "value", "reference", "ratio", "goal")

Row = dict[str, Any]


def cells(row: Row) -> list[str]:
    """The table cells of one RESULT row: name, value with unit, reference, ratio, goal."""
    unit, ratio, value = str(row.get("unit") or ""), row.get("ratio"), row.get("value")
    if isinstance(value, int | float) and not isinstance(value, bool):
        shown = (
            f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}" if abs(value) < 10 else f"{value:.1f}"
        )
        value_cell = f"{shown} {unit}".strip()
    else:
        value_cell = "" if value is None else str(value)
    ratio_cell = f"{ratio:.2f}" if isinstance(ratio, int | float) and not isinstance(ratio, bool) else ""
    return [
        str(row.get("name", "?")),
        value_cell,
        str(row.get("reference") or ""),
        ratio_cell,
        str(row.get("goal") or ""),
    ]


def machine() -> str:
    """Platform, CPU model and core count, and the Python that ran the benchmarks."""
    python = f"{platform.python_implementation()} {platform.python_version()}"
    return f"{platform.platform()}, {cpu_model()}, {os.cpu_count()} cores, {python}"


def markdown(rows: list[Row], failed: list[str], when: datetime) -> str:
    """bench/RESULTS.md: a heading with the date and machine, then the table (pipes escaped)."""
    lines = [
        "# Benchmark results",
        "",
        f"`make bench` on {when:%Y-%m-%d %H:%M} UTC; machine: {machine()}.",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in cells(row)) + " |" for row in rows]
    if failed:
        lines += ["", f"Failed (no figures): {', '.join(failed)}."]
    return "\n".join(lines) + "\n"


def run_script(script: Path, console: Console) -> list[Row] | None:
    """Run one bench script, echo its output, and return its RESULT rows (None when it failed)."""
    console.print(f"[bold]running {script.name}[/]")
    try:
        result = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, timeout=900, check=False
        )
    except subprocess.TimeoutExpired:
        console.print(f"[red]{script.name} timed out[/]")
        return None
    sys.stdout.write(result.stdout)
    if result.returncode != 0:
        sys.stderr.write(result.stderr[-2000:])
        return None
    rows = []
    for line in result.stdout.splitlines():
        if line.startswith("RESULT "):
            try:
                rows.append(json.loads(line.removeprefix("RESULT ")))
            except json.JSONDecodeError:
                console.print(f"[red]{script.name}: unreadable line[/] {line[:200]}")
    return rows


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    console = Console()
    scripts = [s for s in sorted(HERE.glob("bench_*.py")) if not words or any(w in s.stem for w in words)]
    if not scripts:
        console.print(f"[red]no bench script matches {' '.join(words)}[/]")
        return 2
    rows: list[Row] = []
    failed: list[str] = []
    for script in scripts:
        found = run_script(script, console)
        if found is None:
            failed.append(script.name)
        else:
            rows += found
    when = datetime.now(UTC)
    table = Table(title=f"Bastion benchmarks, {when:%Y-%m-%d}, {machine()}")
    for col in COLUMNS:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*cells(row))
    console.print(table)
    if failed:
        console.print(f"[red]failed:[/] {', '.join(failed)}")
    if not words:
        RESULTS_MD.write_text(markdown(rows, failed, when))
        console.print(f"table written to {RESULTS_MD.relative_to(HERE.parent)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
