"""The envelope every Bastion event carries, and the rule that makes event ids deterministic.

An event id is a UUIDv5 of (schema, producer, key), where ``key`` names the event's cause (for a bar:
symbol, interval and time; for an insight: the bar's event id; for a signal: the bar's event id and the
strategy instance). Reprocessing the same cause therefore republishes the same id, which is also the
JetStream ``Nats-Msg-Id``, so the server's dedupe window drops the copy and consumers' processed-event
tables ignore it after that.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from functools import cache, lru_cache
from typing import Annotated, Any, ClassVar, Self, TypeVar

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

#: Namespace of every Bastion event id. Never change it: ids of stored events would no longer match.
BASTION_NAMESPACE = uuid.UUID("6f1c2a4e-3b7d-5c8e-9a10-b2c3d4e5f601")


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


#: A timezone-aware datetime, normalised to UTC. Naive datetimes are rejected.
M = TypeVar("M", bound=BaseModel)

UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]


#: what ``uuid.UUID(..., version=5)`` does to the hash's first 16 bytes: RFC 4122 variant, version 5
_V5_CLEAR = ~((0xC000 << 48) | (0xF000 << 64))
_V5_SET = (0x8000 << 48) | (5 << 76)
_new, _set_slot, _UNKNOWN = object.__new__, object.__setattr__, uuid.SafeUUID.unknown


def derive_event_id(schema: str, producer: str, key: str) -> uuid.UUID:
    """The deterministic event id of the event of ``schema`` that ``producer`` makes from cause ``key``:
    ``uuid.uuid5(BASTION_NAMESPACE, f"{schema}|{producer}|{key}")``, with the hash of the constant prefix
    computed once per (schema, producer), and the UUID made as ``UUID(bytes=..., version=5)`` makes it
    without its argument checks: half the cost (tests/contracts/test_trusted_build.py compares it with
    ``uuid5``)."""
    digest = _id_prefix(schema, producer).copy()
    digest.update(key.encode())
    value = _new(uuid.UUID)
    _set_slot(value, "int", (int.from_bytes(digest.digest()[:16]) & _V5_CLEAR) | _V5_SET)
    _set_slot(value, "is_safe", _UNKNOWN)
    return value


@lru_cache(maxsize=512)
def _id_prefix(schema: str, producer: str) -> Any:
    return hashlib.sha1(BASTION_NAMESPACE.bytes + f"{schema}|{producer}|".encode(), usedforsecurity=False)


class Contract(BaseModel):
    """Base of every message on the bus: frozen, versioned, tolerant of newer minor fields."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True, allow_inf_nan=False)

    SCHEMA: ClassVar[str]
    VERSION: ClassVar[str] = "1.0"

    schema_: str = Field(alias="schema", description="Contract name, e.g. bastion.md.bar")
    version: str = Field(description="Contract version major.minor; consumers accept their own major")

    @model_validator(mode="before")
    @classmethod
    def _fill_and_check_schema(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        data.setdefault("schema", cls.SCHEMA)
        data.setdefault("version", cls.VERSION)
        schema = data.get("schema", data.get("schema_"))
        if schema != cls.SCHEMA:
            raise ValueError(f"schema {schema!r} is not {cls.SCHEMA!r}")
        version = str(data["version"])
        if version.split(".")[0] != cls.VERSION.split(".")[0]:
            raise ValueError(f"version {version} is not compatible with {cls.__name__} {cls.VERSION}")
        return data

    @classmethod
    def major(cls) -> int:
        return int(cls.VERSION.split(".")[0])

    def to_json(self) -> bytes:
        """Canonical JSON bytes: the same model always gives the same bytes."""
        return self.model_dump_json(by_alias=True).encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> Self:
        return cls.model_validate_json(data)


class Command(Contract):
    """A request to do something: strict, unknown fields are rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, allow_inf_nan=False)


class Event(Contract):
    """A fact that happened, with the ids that tie it to its cause."""

    event_id: uuid.UUID = Field(description="Deterministic id, also the JetStream Nats-Msg-Id")
    occurred_at: UtcDatetime = Field(description="When it happened, in data time where the data has a time")
    producer: str = Field(min_length=1, max_length=64, description="Service that produced the event")
    correlation_id: uuid.UUID = Field(description="The bar that started this chain")
    causation_id: uuid.UUID | None = Field(default=None, description="The event that directly caused it")

    @classmethod
    def build(
        cls,
        *,
        producer: str,
        key: str,
        occurred_at: datetime,
        correlation_id: uuid.UUID | None = None,
        causation_id: uuid.UUID | None = None,
        **fields: Any,
    ) -> Self:
        """Build an event whose id is derived from ``key`` (its cause); see the module docstring."""
        event_id = derive_event_id(cls.SCHEMA, producer, key)
        event = cls(
            event_id=event_id,
            occurred_at=occurred_at,
            producer=producer,
            correlation_id=correlation_id or event_id,
            causation_id=causation_id,
            **fields,
        )
        every = _every_field(cls)
        if event.__pydantic_fields_set__ == every:  # the shared set, as ``trusted`` gives it (2 KB less)
            object.__setattr__(event, "__pydantic_fields_set__", every)
        return event

    @classmethod
    def build_trusted(
        cls,
        *,
        producer: str,
        key: str,
        occurred_at: datetime,
        correlation_id: uuid.UUID | None = None,
        causation_id: uuid.UUID | None = None,
        **fields: Any,
    ) -> Self:
        """``build`` WITHOUT validation, for values the caller has already checked (a validated file,
        bulk-checked columns): every field given, with its final type, datetimes in ``datetime.UTC``.
        Same id and JSON bytes as ``build``; only a missing or unknown field name is caught."""
        event_id = derive_event_id(cls.SCHEMA, producer, key)
        values = {
            "schema_": cls.SCHEMA,
            "version": cls.VERSION,
            "event_id": event_id,
            "occurred_at": occurred_at,
            "producer": producer,
            "correlation_id": correlation_id or event_id,
            "causation_id": causation_id,
            **fields,
        }
        every = _every_field(cls)
        if values.keys() != every:
            raise TypeError(f"{cls.__name__}.build_trusted needs exactly the fields {sorted(every)}")
        return _instance(cls, values, every)


def trusted(model: type[M], values: dict[str, Any]) -> M:
    """An instance of ``model`` holding ``values`` as they are, without validation: what
    ``model_construct`` does, minus its per-field default handling. Every field must be given, with its
    final type; for values the caller has already checked.

    Its ``model_fields_set`` (every field) is one set shared by all such instances of ``model``: a set of 19
    names takes 2.2 KB, more than the event's values, and pydantic never changes it in place (assigning a
    field adds a name it holds; ``model_copy`` copies it first). Do not change it either."""
    every = _every_field(model)
    return _instance(model, values, every if values.keys() == every else set(values))


def _instance(model: type[M], values: dict[str, Any], fields_set: set[str]) -> M:
    instance = object.__new__(model)
    _set = object.__setattr__
    _set(instance, "__dict__", values)
    _set(instance, "__pydantic_fields_set__", fields_set)
    _set(instance, "__pydantic_extra__", None)
    _set(instance, "__pydantic_private__", None)
    return instance


@cache
def _every_field(model: type[BaseModel]) -> set[str]:
    return set(model.model_fields)
