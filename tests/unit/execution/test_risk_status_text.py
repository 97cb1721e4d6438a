"""How `bastion risk status` words a limit's usage: with its unit, and "no limit" rather than "of None"."""

from __future__ import annotations

from services.execution.cli import _data_time, _used_of


def test_a_used_figure_is_given_against_its_limit_with_its_unit() -> None:
    assert _used_of({"used": 0.019089, "limit": 10.0}, " %") == "0.02 % of 10.0 %"
    assert _used_of({"used": 3, "limit": 5}, "") == "3 of 5"
    assert _used_of({"used": 4726.55, "limit": 250000.0}, "") == "4726.55 of 250000.0"  # money is not rounded


def test_a_figure_without_a_limit_says_so() -> None:
    assert _used_of({"used": 3, "limit": None}, "") == "3 (no limit)"
    assert _used_of({"used": 1.23456, "limit": None}, " %") == "1.23 % (no limit)"


def test_the_time_before_the_first_bar_is_not_shown_as_1970() -> None:
    assert _data_time({"updated_at": "1970-01-01T00:00:00+00:00"}) == "none yet (no bar seen)"
    assert _data_time({"updated_at": "2026-01-06T05:49:00+00:00"}) == "2026-01-06T05:49:00+00:00"
