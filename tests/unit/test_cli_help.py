"""`bastion ... --help` prints a docstring's later paragraphs as paragraphs, not with its line breaks."""

from __future__ import annotations

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
