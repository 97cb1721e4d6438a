"""The in-memory snapshot store's fan-out, and CSRF tokens."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from services.dashboard.adapters.store import Change, SnapshotStore
from services.dashboard.domain import csrf

T = datetime(2024, 1, 2, tzinfo=UTC)


def test_changes_fan_out_to_every_subscriber_and_deletes_remove_the_key() -> None:
    store = SnapshotStore()
    a, b = store.subscribe(), store.subscribe()
    store.apply("execution.risk", b'{"state": "HALTED"}', 1, T)
    store.apply("execution.risk", None, 2, T)
    for queue in (a, b):
        assert [queue.get_nowait(), queue.get_nowait()] == [
            Change("execution.risk", 1),
            Change("execution.risk", 2, deleted=True),
        ]
    assert "execution.risk" not in store.snaps


def test_a_slow_client_loses_its_oldest_notices_instead_of_blocking() -> None:
    store = SnapshotStore(queue_size=3)
    queue = store.subscribe()
    for rev in range(1, 6):
        store.apply("k", b"{}", rev, T)
    assert [queue.get_nowait().revision for _ in range(3)] == [3, 4, 5]  # type: ignore[union-attr]


def test_undecodable_or_non_object_values_are_kept_as_empty() -> None:
    store = SnapshotStore()
    store.apply("a", b"{not json", 1, T)
    store.apply("b", b"[1, 2]", 2, T)
    assert store.snaps["a"].value == {}
    assert store.snaps["b"].value == {}


def test_closing_ends_every_stream() -> None:
    store = SnapshotStore()
    queue = store.subscribe()
    store.close_subscribers()
    assert queue.get_nowait() is None
    store.unsubscribe(queue)
    assert store.subscribers == 0


@given(st.text(min_size=1, max_size=40), st.text(min_size=1, max_size=40))
def test_a_csrf_token_is_valid_only_for_its_own_nonce(nonce: str, other: str) -> None:
    key = b"k" * 32
    token = csrf.token_for(key, nonce)
    assert csrf.valid(key, nonce, token)
    assert csrf.valid(key, other, token) == (other == nonce)
    assert not csrf.valid(b"x" * 32, nonce, token)
    assert not csrf.valid(key, nonce, None)
