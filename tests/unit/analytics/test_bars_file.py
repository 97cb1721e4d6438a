"""The offline bar-file reader: column names, symbol filter, ordering, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.analytics.adapters.bars_file import BarFileError, read_bars

GOOD = """symbol,Date,Open,High,Low,Close
INFY,2024-01-03,11,12,10,11.5
TCS,2024-01-01,50,51,49,50
INFY,2024-01-01,10,11,9,10.5
INFY,2024-01-01,10,11,9,10.8
INFY,2024-01-02,10.5,12,10,11
"""


def test_reads_one_symbol_sorted_by_time_keeping_the_first_of_a_repeated_time(tmp_path: Path) -> None:
    (tmp_path / "b.csv").write_text(GOOD)
    frame = read_bars(tmp_path / "b.csv", "infy")
    assert [t.isoformat() for t in frame.timestamps] == [
        "2024-01-01T00:00:00+00:00",
        "2024-01-02T00:00:00+00:00",
        "2024-01-03T00:00:00+00:00",
    ]
    assert frame.close.tolist() == [10.5, 11.0, 11.5]
    assert frame.volume.tolist() == [0.0, 0.0, 0.0]
    assert frame.dropped_duplicates == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Date,Open,High\n2024-01-01,1,2\n", "missing column"),
        ("date,open,high,low,close\n2024-01-01,1,2,3,1\n", "not a valid bar"),
        ("date,open,high,low,close\n2024-01-01,1,2,0.5,x\n", "bad value"),
        ("symbol,date,open,high,low,close\nTCS,2024-01-01,1,2,0.5,1\n", "no rows for symbol"),
    ],
)
def test_bad_files_are_refused_with_a_reason(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "b.csv").write_text(text)
    with pytest.raises(BarFileError, match=message):
        read_bars(tmp_path / "b.csv", "INFY")


def test_unknown_file_types_and_missing_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "b.xlsx").write_text("x")
    with pytest.raises(BarFileError, match="unsupported"):
        read_bars(tmp_path / "b.xlsx", "INFY")
    with pytest.raises(BarFileError, match="no such file"):
        read_bars(tmp_path / "none.csv", "INFY")
