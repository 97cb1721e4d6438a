"""A real ``SnapshotStore`` filled with given values, as the KV watch would fill it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from services.dashboard.adapters.store import SnapshotStore


def filled_store(values: dict[str, Any], put_at: datetime | None = None) -> SnapshotStore:
    store = SnapshotStore()
    for i, (key, value) in enumerate(values.items(), start=1):
        store.apply(key, json.dumps(value).encode(), i, put_at or datetime.now(UTC))
    return store
