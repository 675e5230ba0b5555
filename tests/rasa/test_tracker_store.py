"""components.tracker_store: cached trackers, every event still stored once."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    BotUttered,
    SessionStarted,
    SlotSet,
    UserUttered,
)

from components.tracker_store import CachedSQLTrackerStore

DOMAIN = Domain.from_yaml(
    """
version: "3.1"
slots:
  country:
    type: text
    mappings: [{type: custom}]
"""
)


def store(path: Path, **extra: Any) -> CachedSQLTrackerStore:
    return CachedSQLTrackerStore(domain=DOMAIN, dialect="sqlite", db=str(path), **extra)


def stored_events(tracker_store: CachedSQLTrackerStore, sender: str) -> list[str]:
    with tracker_store.session_scope() as session:
        rows = (
            session.query(tracker_store.SQLEvent)
            .filter(tracker_store.SQLEvent.sender_id == sender)
            .order_by(tracker_store.SQLEvent.id)
            .all()
        )
        return [row.type_name for row in rows]


def turn(text: str, country: str | None = None) -> list[Any]:
    events: list[Any] = [UserUttered(text), ActionExecuted("utter_reply"), BotUttered(text)]
    if country:
        events.append(SlotSet("country", country))
    return events + [ActionExecuted("action_listen")]


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def test_a_cached_tracker_is_reused_and_each_event_is_stored_once(tmp_path: Path) -> None:
    tracker_store = store(tmp_path / "tracker.db")
    tracker = run(tracker_store.get_or_create_tracker("c1"))
    for number in range(3):
        for event in turn(f"message {number}", country="ES" if number == 1 else None):
            tracker.update(event)
        run(tracker_store.save(tracker))
        assert run(tracker_store.retrieve("c1")) is tracker  # no rebuild from the database
    assert stored_events(tracker_store, "c1") == [event.type_name for event in tracker.events]

    # A restarted server rebuilds the same conversation from the database.
    restarted = store(tmp_path / "tracker.db")
    rebuilt = run(restarted.retrieve("c1"))
    assert rebuilt is not None and rebuilt is not tracker
    assert [e.as_dict()["event"] for e in rebuilt.events] == [
        e.as_dict()["event"] for e in tracker.events
    ]
    assert rebuilt.get_slot("country") == "ES"
    for event in turn("after the restart"):
        rebuilt.update(event)
    run(restarted.save(rebuilt))
    assert len(stored_events(restarted, "c1")) == len(tracker.events) + 4


def test_a_new_session_in_a_cached_tracker_stores_no_duplicates(tmp_path: Path) -> None:
    tracker_store = store(tmp_path / "tracker.db")
    tracker = run(tracker_store.get_or_create_tracker("c1"))
    for event in turn("first session"):
        tracker.update(event)
    run(tracker_store.save(tracker))
    for event in [ActionExecuted("action_session_start"), SessionStarted(), *turn("second")]:
        tracker.update(event)
    run(tracker_store.save(tracker))
    run(tracker_store.save(tracker))  # saving again adds nothing
    assert len(stored_events(tracker_store, "c1")) == len(tracker.events)


@pytest.mark.parametrize("cache_size", [0, 2])
def test_eviction_and_no_cache_fall_back_to_the_database(tmp_path: Path, cache_size: int) -> None:
    tracker_store = store(tmp_path / "tracker.db", cache_size=cache_size)
    trackers = {}
    for sender in ("a", "b", "c"):
        tracker = run(tracker_store.get_or_create_tracker(sender))
        for event in turn(f"hello from {sender}"):
            tracker.update(event)
        run(tracker_store.save(tracker))
        trackers[sender] = tracker
    again = run(tracker_store.retrieve("a"))  # evicted (or never cached)
    assert again is not None and again is not trackers["a"]
    for event in turn("more"):
        again.update(event)
    run(tracker_store.save(again))
    assert len(stored_events(tracker_store, "a")) == len(again.events)
    if cache_size:
        assert run(tracker_store.retrieve("c")) is trackers["c"]
