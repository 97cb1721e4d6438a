"""The strategy domain stays pure: import-linter checks the contract the lead keeps in pyproject.toml."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

FORBIDDEN = [
    "duckdb",
    "nats",
    "fastapi",
    "shared.runtime",
    "services.analytics",
    "services.marketdata",
    "services.execution",
    "services.auth",
    "services.dashboard",
]


def _config(tmp_path: Path, forbidden: list[str]) -> Path:
    lines = "\n    ".join(forbidden)
    cfg = tmp_path / "strategy.importlinter"
    cfg.write_text(
        "[importlinter]\nroot_packages =\n    services\n    shared\ninclude_external_packages = True\n\n"
        "[importlinter:contract:strategy-domain-pure]\n"
        "name = Strategy domain imports no I/O library and no other service\n"
        "type = forbidden\nsource_modules =\n    services.strategy.domain\n"
        f"forbidden_modules =\n    {lines}\n"
    )
    return cfg


def _lint(cfg: Path) -> subprocess.CompletedProcess[str]:
    cmd = [str(LINT_IMPORTS), "--no-cache", "--no-logo", str(cfg)]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="import-linter is not installed in this environment")
def test_strategy_domain_imports_no_io_library_and_no_other_service(tmp_path: Path) -> None:
    result = _lint(_config(tmp_path, FORBIDDEN))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


@pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="import-linter is not installed in this environment")
def test_the_boundary_check_does_catch_a_forbidden_import(tmp_path: Path) -> None:
    result = _lint(_config(tmp_path, ["pydantic"]))  # the domain does import pydantic: must be reported
    assert result.returncode != 0
    assert "0 kept, 1 broken" in result.stdout
