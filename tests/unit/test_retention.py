"""BASTION_STREAM_MAX_AGE: how long each JetStream stream keeps its messages (shared.runtime.retention)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from bastion.cli import app
from bastion.up import Platform
from shared.contracts.subjects import STREAMS
from shared.runtime.retention import DAY, DEFAULT_MAX_AGE, describe_age, parse_age, parse_max_age
from shared.runtime.settings import MAX_AGE_FILE, RuntimeSettings, SettingsError


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("BASTION_STREAM_MAX_AGE", raising=False)
    monkeypatch.setenv("BASTION_HOME", str(tmp_path / "home"))


def test_the_flowing_streams_keep_thirty_days_and_the_record_is_kept_forever() -> None:
    assert set(DEFAULT_MAX_AGE) == set(STREAMS)
    ages = RuntimeSettings.from_env("analytics").stream_max_age
    assert {name: describe_age(age) for name, age in ages.items()} == {
        "MARKETDATA": "30d",
        "ANALYTICS": "30d",
        "SIGNALS": "30d",
        "EXECUTION": "forever",
        "AUDIT": "forever",
        "DLQ": "forever",
    }


def test_pairs_override_only_the_streams_they_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BASTION_STREAM_MAX_AGE", " marketdata = 90d , SIGNALS=forever,AUDIT=36h,")
    ages = RuntimeSettings.from_env("execution").stream_max_age
    assert ages["MARKETDATA"] == 90 * DAY
    assert ages["SIGNALS"] == 0.0
    assert ages["AUDIT"] == 36 * 3600.0
    assert ages["ANALYTICS"] == 30 * DAY
    assert ages["EXECUTION"] == 0.0


def test_beside_bastion_up_the_ages_it_started_the_services_with_apply_unless_the_variable_says_otherwise(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / MAX_AGE_FILE).write_text("MARKETDATA=90d\n")
    assert RuntimeSettings.from_env("cli").stream_max_age["MARKETDATA"] == 90 * DAY
    monkeypatch.setenv("BASTION_STREAM_MAX_AGE", "MARKETDATA=7d")
    assert RuntimeSettings.from_env("cli").stream_max_age["MARKETDATA"] == 7 * DAY
    monkeypatch.delenv("BASTION_STREAM_MAX_AGE")
    (home / MAX_AGE_FILE).write_text("\n")  # `bastion up` started without the variable: the defaults
    assert RuntimeSettings.from_env("cli").stream_max_age == DEFAULT_MAX_AGE
    (home / MAX_AGE_FILE).write_text("MARKETDATA=soon\n")
    with pytest.raises(SettingsError, match=f"'soon' is not a number of days.*in {home / MAX_AGE_FILE}"):
        RuntimeSettings.from_env("cli")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("MARKETDATA", "is not NAME=AGE"),
        ("=30d", "is not NAME=AGE"),
        ("BARS=30d", "unknown stream 'BARS'; the streams are MARKETDATA, ANALYTICS"),
        ("MARKETDATA=30", "'30' is not a number of days"),
        ("MARKETDATA=1.5d", "'1.5d' is not a number of days"),
        ("MARKETDATA=-3d", "'-3d' is not a number of days"),
        ("MARKETDATA=30m", "'30m' is not a number of days"),
        ("MARKETDATA=0h", "shorter than the dedupe window of 1h"),
        ("MARKETDATA=0d", "shorter than the dedupe window of 1h"),
        ("MARKETDATA=30d,marketdata=60d", "MARKETDATA is given twice"),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable_and_the_fault(
    monkeypatch: pytest.MonkeyPatch, raw: str, message: str
) -> None:
    monkeypatch.setenv("BASTION_STREAM_MAX_AGE", raw)
    with pytest.raises(SettingsError, match="BASTION_STREAM_MAX_AGE") as info:
        RuntimeSettings.from_env("marketdata")
    assert message in str(info.value)


def test_an_age_of_one_hour_is_the_shortest_allowed() -> None:
    assert parse_age("1h") == 3600.0
    assert parse_max_age("DLQ=1h")["DLQ"] == 3600.0


@given(st.integers(min_value=1, max_value=10_000), st.sampled_from(["d", "h", "D", "H"]))
def test_an_age_reads_back_as_the_same_age(n: int, unit: str) -> None:
    seconds = parse_age(f"{n}{unit}")
    assert parse_age(describe_age(seconds)) == seconds
    assert seconds == n * (DAY if unit.lower() == "d" else 3600.0)


def test_ages_are_described_in_the_units_users_write() -> None:
    assert [describe_age(s) for s in (0.0, None, 7 * DAY, 36 * 3600.0, 90.0)] == [
        "forever",
        "forever",
        "7d",
        "36h",
        "90s",
    ]


def test_bastion_up_passes_the_ages_to_its_services_and_a_bad_value_starts_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    platform = Platform(tmp_path, 4222, 8080, 1, 0)
    assert "BASTION_STREAM_MAX_AGE" not in platform.service_env("marketdata", "marketdata", 9101)
    monkeypatch.setenv("BASTION_STREAM_REPLICAS", "3")  # other BASTION_* of the shell stay behind
    monkeypatch.setenv("BASTION_STREAM_MAX_AGE", "MARKETDATA=90d")
    env = platform.service_env("marketdata", "marketdata", 9101)
    assert env["BASTION_STREAM_MAX_AGE"] == "MARKETDATA=90d"
    assert "BASTION_STREAM_REPLICAS" not in env

    monkeypatch.setenv("BASTION_STREAM_MAX_AGE", "MARKETDATA=30m")
    result = CliRunner().invoke(app, ["up", "--home", str(tmp_path / "home")])
    assert result.exit_code == 2
    assert "BASTION_STREAM_MAX_AGE MARKETDATA: age '30m' is not a number of days" in " ".join(
        result.output.split()
    )
    assert not (tmp_path / "home").exists()


@pytest.mark.parametrize("service", ["marketdata", "analytics", "strategy", "execution", "auth", "dashboard"])
def test_a_service_with_a_bad_runtime_setting_exits_with_one_line(service: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    env |= {"BASTION_HOME": str(tmp_path), "BASTION_STREAM_MAX_AGE": "AUDIT=soon"}
    result = subprocess.run(
        [sys.executable, "-m", f"services.{service}"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "BASTION_STREAM_MAX_AGE AUDIT: age 'soon' is not a number of days" in lines[0]


@pytest.mark.parametrize(
    ("command", "variable", "value"),
    [
        (("services.auth",), "BASTION_AUTH_ROUNDS", "many"),
        (("services.auth",), "BASTION_AUTH_LOCK_MINUTES", "-5"),
        (("bastion", "users", "list"), "BASTION_AUTH_ROUNDS", "many"),
        (("services.analytics",), "BASTION_STREAM_REPLICAS", "three"),
        (("services.strategy",), "BASTION_STREAM_REPLICAS", "three"),
        (("bastion", "risk", "status"), "BASTION_STREAM_REPLICAS", "three"),
        (("bastion", "feed", "simulate", "--bars", "3"), "BASTION_METRICS_PORT", "web"),
    ],
)
def test_any_bad_runtime_setting_is_one_line_naming_it_not_a_traceback(
    command: tuple[str, ...], variable: str, value: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    env |= {"BASTION_HOME": str(tmp_path), variable: value}
    result = subprocess.run(
        [sys.executable, "-m", *command], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"{variable} must be a " in lines[0]
    assert repr(value) in lines[0]


def test_in_a_docker_compose_checkout_the_ages_of_its_env_file_apply_unless_the_shell_says_otherwise(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BASTION_HOME", str(tmp_path / "home"))  # no `bastion up` here
    monkeypatch.delenv("BASTION_DOTENV")  # the suite points it away from a developer's own .env
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        '# the deployment\nBASTION_LOG_LEVEL=info\nexport BASTION_STREAM_MAX_AGE="MARKETDATA=90d"\n'
    )
    assert RuntimeSettings.from_env("cli").stream_max_age["MARKETDATA"] == 90 * DAY
    dotenv.write_text("BASTION_STREAM_MAX_AGE=SIGNALS=forever  # keep them\n")
    assert RuntimeSettings.from_env("cli").stream_max_age["SIGNALS"] == 0.0
    monkeypatch.setenv("BASTION_STREAM_MAX_AGE", "SIGNALS=7d")
    assert RuntimeSettings.from_env("cli").stream_max_age["SIGNALS"] == 7 * DAY
    monkeypatch.delenv("BASTION_STREAM_MAX_AGE")
    dotenv.write_text("#BASTION_STREAM_MAX_AGE=SIGNALS=forever\nOTHER=1\n")
    assert RuntimeSettings.from_env("cli").stream_max_age == DEFAULT_MAX_AGE
    dotenv.write_text("BASTION_STREAM_MAX_AGE=MARKETDATA=soon\n")
    with pytest.raises(SettingsError, match=f"'soon' is not a number of days.*in {dotenv}"):
        RuntimeSettings.from_env("cli")
    assert RuntimeSettings.from_env("marketdata").stream_max_age == DEFAULT_MAX_AGE  # services never read it
    monkeypatch.setenv("BASTION_DOTENV", str(tmp_path / "deploy.env"))
    (tmp_path / "deploy.env").write_text("BASTION_STREAM_MAX_AGE=ANALYTICS=60d\n")
    assert RuntimeSettings.from_env("cli").stream_max_age["ANALYTICS"] == 60 * DAY
