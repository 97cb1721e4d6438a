"""The interval of bar files (``shared.intervals``): the bars' spacing when not given, never wider than it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shared.intervals import SpacingError, bar_spacing, files_interval, interval_name, sparser_than


def times(*stamps: str, zone: str = "UTC") -> pd.Series:
    return pd.Series(pd.DatetimeIndex(list(stamps)).tz_localize(zone).tz_convert("UTC"))


def minutes_of_two_days() -> pd.Series:
    day1 = pd.date_range("2024-03-01 03:45", periods=375, freq="1min", tz="UTC")
    day2 = pd.date_range("2024-03-04 03:45", periods=375, freq="1min", tz="UTC")  # Monday, after a weekend
    return pd.Series(day1.append(day2))


@pytest.mark.parametrize(
    ("seconds", "name"), [(60, "1m"), (300, "5m"), (3600, "1h"), (86400, "1d"), (604800, "1w"), (90, "90s")]
)
def test_an_interval_is_named_in_its_largest_whole_unit(seconds: int, name: str) -> None:
    assert interval_name(seconds) == name


def test_the_spacing_is_the_most_common_gap_not_the_overnight_or_weekend_one() -> None:
    assert bar_spacing(pd.DatetimeIndex(minutes_of_two_days()).as_unit("ns").asi8) == 60
    assert files_interval([("infy.csv", minutes_of_two_days())], None) == "1m"
    weekdays = times(
        "2024-03-01", "2024-03-04", "2024-03-05", "2024-03-06", "2024-03-07", zone="Asia/Kolkata"
    )
    assert files_interval([("tcs.csv", weekdays)], None) == "1d"
    assert files_interval([("one.csv", times("2024-03-01"))], None) == "1d"  # nothing to space


def test_a_given_interval_wider_than_the_bars_is_refused_naming_the_two_bars() -> None:
    with pytest.raises(SpacingError) as caught:
        files_interval([("infy.csv", minutes_of_two_days())], "1d")
    said = str(caught.value)
    assert said.startswith("infy.csv: bars at 2024-03-01T03:45:00+00:00 and 2024-03-01T03:46:00+00:00")
    assert "closer than half the interval 1d, and 747 more pair(s) too" in said
    assert "(the file's bars are mostly 1m apart)" in said
    assert files_interval([("infy.csv", minutes_of_two_days())], "1m") == "1m"
    assert files_interval([("infy.csv", minutes_of_two_days())], "30s") == "30s"  # sparse is allowed


def test_one_bar_too_close_is_refused_even_when_the_interval_is_inferred() -> None:
    with pytest.raises(SpacingError, match="bars at 2024-03-01T03:46:00\\+00:00 and 2024-03-01T03:46:20"):
        files_interval(
            [
                (
                    "x.csv",
                    times(
                        "2024-03-01 03:45",
                        "2024-03-01 03:46",
                        "2024-03-01 03:46:20",
                        "2024-03-01 03:47",
                        "2024-03-01 03:48",
                    ),
                )
            ],
            None,
        )


def test_local_midnights_across_a_daylight_saving_change_are_still_daily_bars() -> None:
    # New York springs forward on 2024-03-10: that gap is 23 hours
    days = times(
        "2024-03-08", "2024-03-09", "2024-03-10", "2024-03-11", "2024-03-12", zone="America/New_York"
    )
    assert files_interval([("spy.csv", days)], None) == "1d"
    assert files_interval([("spy.csv", days)], "1d") == "1d"


def test_files_spaced_differently_need_an_interval() -> None:
    five = pd.Series(pd.date_range("2024-03-01 03:45", periods=10, freq="5min", tz="UTC"))
    with pytest.raises(SpacingError, match=r"spaced differently \(a.csv: 1m, b.csv: 5m\); give --interval"):
        files_interval([("a.csv", minutes_of_two_days()), ("b.csv", five)], None)
    assert files_interval([("a.csv", minutes_of_two_days()), ("b.csv", five)], "1m") == "1m"


def test_bars_under_a_second_apart_have_no_interval() -> None:
    with pytest.raises(SpacingError, match="less than a second apart"):
        files_interval([("x.csv", times("2024-03-01 03:45:00", "2024-03-01 03:45:00.5"))], None)


def test_a_spacing_no_interval_can_name_asks_for_one() -> None:
    odd = pd.Series(pd.date_range("2024-03-01", periods=5, freq="12345s", tz="UTC"))
    with pytest.raises(SpacingError, match=r"bars 12,345s apart have no interval .*; give --interval"):
        files_interval([("x.csv", odd)], None)
    with pytest.raises(SpacingError, match=r"\(the file's bars are mostly 12,345s apart\)"):
        files_interval([("x.csv", odd)], "1d")
    assert files_interval([("x.csv", odd)], "3h") == "3h"


def ns(series: pd.Series) -> np.ndarray:
    return pd.DatetimeIndex(series).as_unit("ns").asi8


@pytest.mark.parametrize(
    ("freq", "given", "warned"),
    [
        ("5min", "1m", "5m"),
        ("1h", "30m", "1h"),
        ("5min", "5m", None),
        ("5min", "3m", None),
        ("1min", "1m", None),
    ],
)
def test_a_given_interval_half_the_bars_spacing_or_less_is_warned_of(
    freq: str, given: str, warned: str | None
) -> None:
    bars = pd.Series(pd.date_range("2024-03-01 03:45", periods=60, freq=freq, tz="UTC"))
    warning = sparser_than([("one.csv", ns(minutes_of_two_days())), ("b.csv", ns(bars))], given)
    if warned is None:
        assert warning is None
    else:
        assert warning == (
            f"warning: b.csv: --interval {given}, but its bars are mostly {warned} apart; they are taken as"
            f" {given} bars (the indicators count bars, and a symbol keeps one interval). If they are"
            f" {warned} bars, give --interval {warned}"
        )


def test_daily_bars_over_weekends_and_a_single_bar_are_not_warned_of() -> None:
    days = pd.Series(pd.bdate_range("2024-01-01", periods=250, tz="UTC"))
    assert sparser_than([("d.csv", ns(days))], "1d") is None
    assert sparser_than([("one.csv", ns(days[:1]))], "1m") is None
