"""Contracts: round trips, deterministic ids, the symbol rule, schema snapshots and compatibility."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError, create_model

from bastion import contracts_tool
from shared import contracts as c
from shared.contracts.subjects import InvalidSymbolError, bar_subject, normalize_symbol
from tests.contracts.samples import bar, samples

SAMPLES = samples()


def test_every_contract_has_a_sample() -> None:
    assert {type(s) for s in SAMPLES} == set(c.ALL_CONTRACTS)


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: type(e).__name__)
def test_contract_round_trips_through_json_unchanged(event: c.Contract) -> None:
    assert type(event).from_json(event.to_json()) == event
    assert type(event).from_json(event.to_json()).to_json() == event.to_json()


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: type(e).__name__)
def test_contracts_are_frozen(event: c.Contract) -> None:
    with pytest.raises(ValidationError):
        event.version = "1.1"  # type: ignore[misc]


def test_event_ids_are_deterministic_from_their_cause() -> None:
    assert bar().event_id == bar().event_id
    assert bar().to_json() == bar().to_json()
    assert c.derive_event_id("a", "p", "k") != c.derive_event_id("a", "p", "k2")


def test_consumers_tolerate_fields_of_a_newer_minor_version() -> None:
    data = json.loads(bar().to_json())
    data.update(version="1.7", exchange="NSE")
    assert c.OHLCVBar.model_validate(data).symbol == "INFY"


def test_a_payload_of_another_major_version_is_rejected() -> None:
    data = json.loads(bar().to_json()) | {"version": "2.0"}
    with pytest.raises(ValidationError, match="not compatible"):
        c.OHLCVBar.model_validate(data)


def test_commands_reject_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        c.LoginRequest.model_validate({"username": "a", "password": "b", "is_admin": True})


def test_bar_with_high_below_close_is_rejected() -> None:
    data = json.loads(bar().to_json()) | {"high": 1400}
    with pytest.raises(ValidationError, match="high"):
        c.OHLCVBar.model_validate(data)


def test_naive_timestamps_are_rejected_and_aware_ones_normalised_to_utc() -> None:
    data = json.loads(bar().to_json())
    with pytest.raises(ValidationError):
        c.OHLCVBar.model_validate(data | {"timestamp": "2024-01-02T03:45:00"})
    ist = c.OHLCVBar.model_validate(data | {"timestamp": "2024-01-02T09:15:00+05:30"})
    assert ist.timestamp.isoformat() == "2024-01-02T03:45:00+00:00"


@pytest.mark.parametrize("symbol", ["INFY", "m&m", "BAJAJ-AUTO", "NIFTY_50", "500325"])
def test_nse_symbols_are_accepted(symbol: str) -> None:
    assert bar_subject(symbol) == f"md.v1.bar.{symbol.upper()}"


@pytest.mark.parametrize("symbol", ["RELIANCE.NS", "A B", "*", ">", "", "^NSEI", "X" * 33, "INF.>"])
def test_symbols_nats_subjects_cannot_carry_are_rejected_clearly(symbol: str) -> None:
    with pytest.raises(InvalidSymbolError, match="invalid symbol"):
        normalize_symbol(symbol)


EXECUTION_FIELDS = {"quantity", "qty", "price", "limit_price", "price_target", "order_type", "side", "size"}


def _all_fields(model: Any) -> set[str]:
    names = set(model.model_fields)
    for field in model.model_fields.values():
        for arg in getattr(field.annotation, "__args__", ()) or ():
            if hasattr(arg, "model_fields"):
                names |= _all_fields(arg)
        if hasattr(field.annotation, "model_fields"):
            names |= _all_fields(field.annotation)
    return names


@pytest.mark.parametrize("model", [c.InsightEvent, c.ConfluenceInsight, c.SignalEvent])
def test_insights_and_signals_carry_no_execution_field(model: Any) -> None:
    assert not (_all_fields(model) & EXECUTION_FIELDS)


def test_checked_in_schemas_and_asyncapi_match_the_models() -> None:
    problems = [p for m in c.ALL_CONTRACTS for p in contracts_tool.check_model(m)]
    assert problems == []
    assert contracts_tool.ASYNCAPI_FILE.read_text() == contracts_tool.generate_asyncapi()


def _bar_without_volume(version: str) -> type[c.Contract]:
    fields = {
        name: (info.annotation, info)
        for name, info in c.OHLCVBar.model_fields.items()
        if name
        not in (
            "volume",
            "schema_",
            "version",
            "event_id",
            "occurred_at",
            "producer",
            "correlation_id",
            "causation_id",
        )
    }
    model = create_model("OHLCVBar", __base__=c.Event, **fields)  # type: ignore[call-overload]
    model.SCHEMA = c.OHLCVBar.SCHEMA
    model.VERSION = version
    return model


def test_removing_a_required_field_without_a_major_bump_fails_the_check() -> None:
    problems = contracts_tool.check_model(_bar_without_volume("1.1"))
    assert any("required field 'volume' was removed" in p for p in problems)
    assert any("major version bump" in p for p in problems)


def test_the_same_removal_with_a_major_bump_is_a_new_schema_file() -> None:
    model = _bar_without_volume("2.0")
    assert contracts_tool.schema_file(model).name == "bastion.md.bar.v2.json"
    problems = contracts_tool.check_model(model)
    assert problems == ["OHLCVBar: bastion.md.bar.v2.json is missing; run `make schemas`"]


def test_retyping_a_required_field_is_breaking() -> None:
    old = contracts_tool.generate_schema(c.OHLCVBar)
    new = json.loads(json.dumps(old))
    new["properties"]["volume"] = {"type": "string"}
    assert contracts_tool.breaking_changes(old, new) == ["root: required field 'volume' changed type"]


def test_adding_an_optional_field_is_not_breaking() -> None:
    old = contracts_tool.generate_schema(c.OHLCVBar)
    new = json.loads(json.dumps(old))
    new["properties"]["exchange"] = {"type": "string"}
    assert contracts_tool.breaking_changes(old, new) == []
