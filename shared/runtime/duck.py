"""DuckDB helpers: numbered migrations applied at start-up, and telling a lock from a damaged file."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import duckdb


class DatabaseUnusable(RuntimeError):
    """A service's DuckDB file that cannot be opened for another reason than a lock: damaged, not a DuckDB
    file, written by a newer DuckDB, or not readable. The message names the file and what to do."""


def is_lock_error(exc: duckdb.Error) -> bool:
    """DuckDB's refusal because another process holds the file (it allows one writer per file)."""
    return "lock" in str(exc).lower()


def open_db(path: Path | str, migrations: Sequence[str]) -> duckdb.DuckDBPyConnection:
    """Open (creating) the DuckDB file at ``path`` and apply the migrations not applied yet, in order.

    ``migrations[i]`` is migration number ``i + 1``; never edit or reorder one that has shipped, append.
    A lock held by another process raises DuckDB's ``IOException``; any other failure to open the file,
    ``DatabaseUnusable``.
    """
    try:
        conn = duckdb.connect(str(path))
    except duckdb.IOException as exc:
        if is_lock_error(exc):
            raise
        said = str(exc).splitlines()[0].removeprefix("IO Error: ")
        raise DatabaseUnusable(
            f"cannot open {path}: {said} Restore it from a backup, or move it away to start with an empty "
            "one (deploy/README.md, 'Backups of the DuckDB files', says what each service can rebuild)"
        ) from None
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ)"
    )
    row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
    current = int(row[0]) if row else 0
    for number, sql in enumerate(migrations, start=1):
        if number <= current:
            continue
        conn.execute("BEGIN")
        try:
            conn.execute(sql)
            conn.execute("INSERT INTO schema_migrations VALUES (?, now())", [number])
            conn.execute("COMMIT")
        except Exception:
            conn.execute("ROLLBACK")
            raise
    return conn
