"""Whole-number settings: BASTION_STREAM_REPLICAS (how many copies of each stream and KV bucket a service asks
JetStream for) and the analytics service's batch and ack wait, each refused by name when out of bounds."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.runtime.settings import RuntimeSettings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("BASTION_STREAM_REPLICAS", "BASTION_METRICS_PORT", "BASTION_NATS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BASTION_HOME", str(tmp_path / "home"))


def test_stream_replicas_default_to_one_when_unset() -> None:
    assert RuntimeSettings.from_env("analytics").stream_replicas == 1
    assert RuntimeSettings(service="analytics").stream_replicas == 1


def test_stream_replicas_default_to_one_when_blank(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BASTION_STREAM_REPLICAS", "  ")
    assert RuntimeSettings.from_env("analytics").stream_replicas == 1


@pytest.mark.parametrize(("raw", "expected"), [("1", 1), ("3", 3), (" 5 ", 5), ("03", 3)])
def test_stream_replicas_are_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: int
) -> None:
    monkeypatch.setenv("BASTION_STREAM_REPLICAS", raw)
    assert RuntimeSettings.from_env("execution").stream_replicas == expected


@pytest.mark.parametrize("raw", ["0", "-1", "three", "1.5", "3x", "²", "0x3"])
def test_a_bad_stream_replicas_value_is_refused_with_a_clear_message(
    monkeypatch: pytest.MonkeyPatch, raw: str
) -> None:
    monkeypatch.setenv("BASTION_STREAM_REPLICAS", raw)
    with pytest.raises(ValueError, match="BASTION_STREAM_REPLICAS must be a whole number >= 1") as info:
        RuntimeSettings.from_env("execution")
    assert repr(raw) in str(info.value)


@given(st.text(max_size=6))
def test_any_stream_replicas_text_is_read_as_its_number_or_refused_by_name(raw: str) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BASTION_STREAM_REPLICAS", raw.replace("\x00", ""))
        value = raw.replace("\x00", "").strip()
        if value.isascii() and value.isdigit() and int(value) >= 1:
            assert RuntimeSettings.from_env("execution").stream_replicas == int(value)
        elif value:
            with pytest.raises(ValueError, match="BASTION_STREAM_REPLICAS"):
                RuntimeSettings.from_env("execution")


@pytest.mark.parametrize(
    ("name", "raw", "bounds"),
    [
        ("BASTION_ANALYTICS_BATCH", "0", "1..10000"),
        ("BASTION_ANALYTICS_BATCH", "10001", "1..10000"),
        ("BASTION_ANALYTICS_ACK_WAIT", "3601", "1..3600"),
        ("BASTION_ANALYTICS_ACK_WAIT", "ten", "1..3600"),
    ],
)
def test_the_analytics_service_refuses_a_batch_or_ack_wait_out_of_bounds_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], name: str, raw: str, bounds: str
) -> None:
    from services.analytics.__main__ import main

    monkeypatch.setenv(name, raw)
    assert main() == 2
    assert capsys.readouterr().err == f"analytics: {name} must be a whole number {bounds}, not {raw!r}\n"
