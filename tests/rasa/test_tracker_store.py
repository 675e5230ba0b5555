"""components.tracker_store: cached, trimmed trackers; every event still stored once."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from rasa.core.brokers.broker import EventBroker
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    ActiveLoop,
    BotUttered,
    SessionStarted,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker

import components.tracker_store as tracker_store_module
from components.tracker_store import CachedSQLTrackerStore, trim_tracker, turn_starts

DOMAIN = Domain.from_yaml(
    """
version: "3.1"
slots:
  country:
    type: text
    mappings: [{type: custom}]
forms:
  country_form:
    required_slots: [country]
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


def test_a_cached_tracker_is_saved_without_an_orm_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tracker_store = store(tmp_path / "tracker.db")
    tracker = run(tracker_store.get_or_create_tracker("c1"))
    run(tracker_store.save(tracker))  # a new conversation: the database is asked
    sessions = []
    scope = tracker_store.session_scope

    def counted() -> Any:
        sessions.append(1)
        return scope()

    monkeypatch.setattr(tracker_store, "session_scope", counted)
    for number in range(3):
        for event in turn(f"message {number}"):
            tracker.update(event)
        run(tracker_store.save(tracker))
    assert sessions == []
    monkeypatch.undo()
    assert stored_events(tracker_store, "c1") == [event.type_name for event in tracker.events]


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


def test_sqlite_connections_are_kept_between_turns(tmp_path: Path) -> None:
    tracker_store = store(tmp_path / "tracker.db")
    assert isinstance(tracker_store.engine.pool, sqlalchemy.pool.QueuePool)
    tracker = run(tracker_store.get_or_create_tracker("c1"))
    connections = set()
    for number in range(3):
        for event in turn(f"message {number}"):
            tracker.update(event)
        run(tracker_store.save(tracker))
        with tracker_store.engine.connect() as connection:
            connections.add(id(connection.connection.dbapi_connection))
    assert len(connections) == 1


def long_conversation(tracker: Any, turns: int) -> None:
    for number in range(turns):
        for event in turn(f"message {number}", country="ES" if number == 2 else None):
            tracker.update(event)


def test_a_long_tracker_is_trimmed_and_every_event_is_still_stored(tmp_path: Path) -> None:
    tracker_store = store(tmp_path / "tracker.db", keep_turns=3, trim_after_turns=7)
    tracker = run(tracker_store.get_or_create_tracker("c1"))
    tracker.update(ActionExecuted("action_listen"))
    all_events = list(tracker.events)
    for number in range(16):
        for event in turn(f"message {number}", country="ES" if number == 1 else None):
            tracker.update(event)
            all_events.append(event)
        run(tracker_store.save(tracker))
        tracker = run(tracker_store.retrieve("c1"))
        assert tracker is not None
    # The cached tracker carries a few turns, and the slot set long before.
    assert len(turn_starts(tracker.events)) <= 7
    assert len(tracker.events) < len(all_events)
    assert tracker.get_slot("country") == "ES"
    assert tracker.copy().get_slot("country") == "ES"  # a replay keeps it too
    # The database holds every real event once, and none of the trim's stand-ins.
    assert stored_events(tracker_store, "c1") == [event.type_name for event in all_events]
    restarted = store(tmp_path / "tracker.db")
    rebuilt = run(restarted.retrieve("c1"))
    assert rebuilt is not None and rebuilt.get_slot("country") == "ES"


def test_trimming_keeps_the_latest_turns_and_the_slots() -> None:
    tracker = DialogueStateTracker("c1", DOMAIN.slots)
    tracker.update(ActionExecuted("action_listen"))
    long_conversation(tracker, 10)
    trimmed = trim_tracker(tracker, DOMAIN, keep_turns=6)
    assert trimmed is not None
    assert len(turn_starts(trimmed.events)) == 6
    assert list(trimmed.events)[-20:] == list(tracker.events)[-20:]
    assert trimmed.current_slot_values() == tracker.current_slot_values()
    assert trimmed.latest_message == tracker.latest_message
    assert trimmed.past_states(DOMAIN)[-10:] == tracker.past_states(DOMAIN)[-10:]


def test_the_stories_states_are_compared_only_when_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    looks: list[bool] = []
    states_for = Domain.states_for_tracker_history

    def counted(self: Domain, tracker: DialogueStateTracker, **kwargs: Any) -> Any:
        looks.append(kwargs["ignore_rule_only_turns"])
        return states_for(self, tracker, **kwargs)

    monkeypatch.setattr(Domain, "states_for_tracker_history", counted)
    tracker = DialogueStateTracker("c1", DOMAIN.slots)
    tracker.update(ActionExecuted("action_listen"))
    long_conversation(tracker, 10)
    both = trim_tracker(tracker, DOMAIN, keep_turns=6)
    assert looks == [False, False, True, True]  # rules' states, then stories', for each
    looks.clear()
    rules_only = trim_tracker(tracker, DOMAIN, keep_turns=6, story_states_checked=0)
    assert looks == [False, False]
    assert both is not None and rules_only is not None
    assert list(rules_only.events) == list(both.events)


def test_the_stories_states_are_compared_whenever_a_policy_reads_them() -> None:
    """endpoints.yml may only skip them while config.yml has no policy that reads them."""
    import yaml

    root = Path(__file__).resolve().parents[2]
    policies = {
        policy["name"] for policy in yaml.safe_load((root / "config.yml").read_text())["policies"]
    }
    store_config = yaml.safe_load((root / "endpoints.yml").read_text())["tracker_store"]
    checked = store_config.get("story_states_checked", tracker_store_module.STORY_STATES_CHECKED)
    reading = {
        "MemoizationPolicy",
        "AugmentedMemoizationPolicy",
        "TEDPolicy",
        "UnexpecTEDIntentPolicy",
    }
    assert "RulePolicy" in policies
    if policies & reading:
        assert checked >= tracker_store_module.STORY_STATES_CHECKED
    else:
        assert checked == 0  # nothing reads them: comparing them is wasted work


def test_no_trim_while_a_form_runs_at_every_possible_cut() -> None:
    tracker = DialogueStateTracker("c1", DOMAIN.slots)
    tracker.update(ActionExecuted("action_listen"))
    tracker.update(UserUttered("start"))
    tracker.update(ActiveLoop("country_form"))
    long_conversation(tracker, 10)
    assert trim_tracker(tracker, DOMAIN, keep_turns=6) is None


def test_no_trim_when_the_turns_are_too_short_to_compare() -> None:
    tracker = DialogueStateTracker("c1", DOMAIN.slots)
    tracker.update(ActionExecuted("action_listen"))
    for number in range(10):
        tracker.update(UserUttered(f"message {number}"))
        tracker.update(ActionExecuted("action_listen"))
    # Two turns hold too few dialogue states to check that nothing changed.
    assert trim_tracker(tracker, DOMAIN, keep_turns=2) is None


def test_a_tracker_that_cannot_be_trimmed_is_not_tried_on_every_turn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts: list[int] = []

    def never(tracker: DialogueStateTracker, domain: Domain, keep_turns: int, *_: Any) -> None:
        attempts.append(len(turn_starts(tracker.events)))

    monkeypatch.setattr(tracker_store_module, "trim_tracker", never)
    tracker_store = store(tmp_path / "tracker.db", keep_turns=2, trim_after_turns=5)
    tracker = run(tracker_store.get_or_create_tracker("c1"))
    tracker.update(ActionExecuted("action_listen"))
    for number in range(12):
        for event in turn(f"message {number}"):
            tracker.update(event)
        run(tracker_store.save(tracker))
    # Tried (keeping 2, then 4 turns) on passing 5 turns, then on passing two more, and so on.
    assert attempts == [6, 6, 9, 9, 12, 12]


class CollectingBroker(EventBroker):
    """An event broker that keeps what it is given."""

    def __init__(self) -> None:
        self.published: list[dict[str, Any]] = []

    def publish(self, event: dict[str, Any]) -> None:
        self.published.append(event)


def test_each_event_is_streamed_once_to_an_event_broker(tmp_path: Path) -> None:
    broker = CollectingBroker()
    tracker_store = store(tmp_path / "tracker.db")
    tracker_store.event_broker = broker
    tracker = run(tracker_store.get_or_create_tracker("c1"))
    for number in range(3):
        for event in turn(f"message {number}"):
            tracker.update(event)
        run(tracker_store.save(tracker))
        assert run(tracker_store.retrieve("c1")) is tracker
    assert [event["event"] for event in broker.published] == [
        event.as_dict()["event"] for event in tracker.events
    ]
    assert {event["sender_id"] for event in broker.published} == {"c1"}
