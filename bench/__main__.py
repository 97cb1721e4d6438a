"""`make bench`: run every bench/bench_*.py and print one table of their RESULT lines.

Each script prints human-readable figures and, for the table, lines ``RESULT {"name": ..., "value": ...,
"unit": ..., "reference": ..., "ratio": ..., "goal": ...}``. Ratios compare against a reference measured in
the same run, because these machines are noisy.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent


def main() -> int:
    console = Console()
    rows: list[dict[str, object]] = []
    failed: list[str] = []
    for script in sorted(HERE.glob("bench_*.py")):
        console.print(f"[bold]running {script.name}[/]")
        result = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, timeout=900, check=False
        )
        sys.stdout.write(result.stdout)
        if result.returncode != 0:
            failed.append(script.name)
            sys.stderr.write(result.stderr[-2000:])
            continue
        for line in result.stdout.splitlines():
            if line.startswith("RESULT "):
                rows.append(json.loads(line.removeprefix("RESULT ")))
    table = Table(
        title=f"Bastion benchmarks, {datetime.now(UTC):%Y-%m-%d}, {platform.machine()}, "
        f"{platform.python_implementation()} {platform.python_version()}"
    )
    for col in ("benchmark", "value", "reference", "ratio", "goal"):
        table.add_column(col)
    for row in rows:
        unit = str(row.get("unit", ""))
        ratio, value = row.get("ratio"), row.get("value")
        table.add_row(
            str(row["name"]),
            f"{value:,.1f} {unit}" if isinstance(value, int | float) else str(value),
            str(row.get("reference", "")),
            f"{ratio:.2f}" if isinstance(ratio, int | float) else "",
            str(row.get("goal", "")),
        )
    console.print(table)
    if failed:
        console.print(f"[red]failed:[/] {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
