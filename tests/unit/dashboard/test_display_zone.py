"""``BASTION_DASHBOARD_TZ``: the zone the pages show times in (the data stays UTC)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from bastion.cli import app
from bastion.up import Platform
from services.dashboard.filters import epoch, qty, when
from services.dashboard.settings import DashboardSettings

IST = ZoneInfo("Asia/Kolkata")
OPEN = datetime(2024, 1, 2, 3, 45, tzinfo=UTC)  # NSE's open, 09:15 IST


def test_times_are_shown_in_the_zone_named_after_them() -> None:
    assert when(OPEN) == "2024-01-02 03:45:00 UTC"
    assert when(OPEN, IST) == "2024-01-02 09:15:00 IST"
    assert when("2024-01-02T03:45:00Z", IST) == "2024-01-02 09:15:00 IST"  # an event's ISO text
    assert when("2024-01-02T09:15:00+05:30") == "2024-01-02 03:45:00 UTC"
    assert epoch(OPEN.timestamp(), IST) == "2024-01-02 09:15:00 IST"
    assert (
        when(datetime(2024, 7, 1, 12, 0, tzinfo=UTC), ZoneInfo("Europe/London")) == "2024-07-01 13:00:00 BST"
    )


@pytest.mark.parametrize(("value", "shown"), [(None, "—"), ("", "—"), ("soon", "soon"), (3, "—")])
def test_what_is_not_a_time_is_shown_as_it_is_or_as_a_dash(value: object, shown: str) -> None:
    assert when(value, IST) == shown


def test_the_zone_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BASTION_DASHBOARD_TZ", raising=False)
    assert DashboardSettings.from_env().tz is UTC
    monkeypatch.setenv("BASTION_DASHBOARD_TZ", "Asia/Kolkata")
    assert DashboardSettings.from_env().tz == IST
    monkeypatch.setenv("BASTION_DASHBOARD_TZ", "IST")
    with pytest.raises(
        ValueError, match="BASTION_DASHBOARD_TZ 'IST': not a time zone; use an IANA name such as Asia/Kolkata"
    ):
        DashboardSettings.from_env()


def test_bastion_up_tz_reaches_the_dashboard_and_a_bad_one_starts_nothing(tmp_path: Path) -> None:
    platform = Platform(tmp_path, 4222, 8080, 1, 0, tz="Asia/Kolkata")
    env = platform.service_env("dashboard", "dashboard", 9106)
    assert env["BASTION_DASHBOARD_TZ"] == "Asia/Kolkata"
    result = CliRunner().invoke(app, ["up", "--home", str(tmp_path / "home"), "--tz", "IST"])
    assert result.exit_code == 2
    assert "--tz 'IST': not a time zone; use an IANA name such as Asia/Kolkata, or UTC" in " ".join(
        result.output.split()
    )
    assert not (tmp_path / "home").exists()


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (3.0, "3"),
        (1200, "1,200"),
        (-10.0, "-10"),
        (2.5, "2.50"),
        (4726.55, "4,726.55"),
        (None, "—"),
        (True, "—"),
    ],
)
def test_quantities_and_counts_are_shown_without_decimals_when_whole(value: object, shown: str) -> None:
    assert qty(value) == shown
