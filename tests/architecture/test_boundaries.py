"""The architecture's boundaries are enforced by import-linter (contracts in pyproject.toml), run here."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = str(Path(sys.executable).parent / "lint-imports")


def _lint(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache"], cwd=cwd, capture_output=True, text=True, check=False, timeout=120
    )


def test_every_import_contract_is_kept() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_strategy_that_touches_the_database_breaks_the_build(tmp_path: Path) -> None:
    copy = tmp_path / "repo"
    for name in ("bastion", "services", "shared"):
        shutil.copytree(
            ROOT / name, copy / name, ignore=shutil.ignore_patterns("__pycache__", "node_modules")
        )
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    (copy / "services" / "strategy" / "domain" / "sneaky.py").write_text("import duckdb\n")
    result = _lint(copy)
    assert result.returncode != 0
    assert "Strategies decide only" in result.stdout
    assert "services.strategy.domain.sneaky -> duckdb" in result.stdout
