"""`bastion ... --help` prints a docstring's later paragraphs as paragraphs, not with its line breaks."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from bastion.cli import _one_line_paragraphs, app


def test_a_later_paragraph_of_a_command_is_not_broken_mid_sentence() -> None:
    result = CliRunner().invoke(app, ["audit", "verify", "--help"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert "or where the file is not at hand, it checks the copy" in result.output  # one line, wide terminal
    result = CliRunner().invoke(app, ["analytics", "update", "--help"], env={"COLUMNS": "300"})
    assert "while it runs (it holds the file), the service does it on request" in result.output


def test_lists_and_indented_paragraphs_keep_their_lines() -> None:
    doc = """First line.

    A paragraph
    over two lines.

    - one
    - two

    Example::

        bastion up
        bastion test
    """
    assert _one_line_paragraphs(doc).split("\n\n") == [
        "First line.",
        "A paragraph over two lines.",
        "- one\n- two",
        "Example::",
        "    bastion up\n    bastion test",
    ]


HEAVY = ("pandas", "numba")  # ~0.8 s of imports that only some commands need


def imported_after(args: list[str]) -> list[str]:
    """Which of ``HEAVY`` a fresh interpreter has imported after ``bastion <args>``."""
    code = (
        "import json, sys\n"
        "from typer.testing import CliRunner\n"
        "from bastion.cli import app\n"
        f"result = CliRunner().invoke(app, {args!r})\n"
        "assert result.exit_code == 0, result.output\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    found: list[str] = json.loads(done.stdout)
    return found


@pytest.mark.parametrize("args", [["risk", "status", "--help"], ["streams", "--help"], ["users", "--help"]])
def test_a_command_imports_only_what_it_needs(args: list[str]) -> None:
    assert imported_after(args) == []


def test_a_command_that_needs_them_imports_them() -> None:  # so the check above can see them
    assert imported_after(["backtest", "--help"]) == ["numba", "pandas"]
