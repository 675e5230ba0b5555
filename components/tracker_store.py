"""An SQL tracker store that keeps recent trackers, trimmed to their last turns, in memory.

Rasa's SQL tracker store rebuilds a conversation's tracker from its stored
events on every message (load, decode, replay), and before each save counts
the stored events to find the new ones. Profiled under load on this
machine, the two took over 40% of the Rasa server's CPU time, growing with
the length of the conversation. This store keeps the trackers of recently
active conversations in memory and remembers how many of their events are
stored, so a turn costs one insert of its new events (one statement for all
of them). Every event is still
written to the database, so a restarted server (or an evicted conversation)
carries on from there.

Three more costs grew with the conversation, on every prediction: Rasa
featurises the whole history for each policy, copies the tracker by
replaying every event before each action, and sends every event to the
action server. Our policies only ever look a few turns back (the rules'
length; MemoizationPolicy's ``max_history`` if stories are memoised), so a cached
tracker is trimmed to its last turns once it grows long (see
``trim_tracker``): the old turns are replaced by the slot values they left
behind, and the trim is only kept when the dialogue states the policies see
come out the same. The database keeps every event.

A cached tracker is only right while this process is the only writer of its
conversation: set ``cache_size: 0`` when several Rasa instances share the
tracker database (the production profile with a Redis lock store), or route
each conversation to one instance (the app does, see README).

SQLite connections are pooled: SQLAlchemy 1.4 opens and closes a file
database's connection for every session by default, and closing the last
connection to a WAL database checkpoints it, which cost more than the
inserts themselves.
"""

from __future__ import annotations

import copy
import itertools
import json
import logging
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, Event, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import INTENT_NAME_KEY

logger = logging.getLogger(__name__)

DEFAULT_CACHE_SIZE = 500
# Turns (a user message and what followed) a trimmed tracker keeps, and how
# many it may reach before it is trimmed again (so trimming, which replays
# the tracker once, happens every few turns, not on each).
DEFAULT_KEEP_TURNS = 4
DEFAULT_TRIM_AFTER_TURNS = 10
# How many of the latest dialogue states must be the same, with and without
# the trim, for the trim to be kept: more than the longest rule and, for
# stories, more than MemoizationPolicy's max_history (3, if it is used
# again), with a margin. Only MemoizationPolicy and TED read the stories'
# states: with neither in config.yml, endpoints.yml sets
# ``story_states_checked: 0`` and they are not compared (a test holds the two
# files to that).
RULE_STATES_CHECKED = 10
STORY_STATES_CHECKED = 6


class CachedSQLTrackerStore(SQLTrackerStore):
    """``SQLTrackerStore`` plus an LRU cache of live, trimmed trackers."""

    def __init__(
        self,
        *args: Any,
        cache_size: int = DEFAULT_CACHE_SIZE,
        keep_turns: int = DEFAULT_KEEP_TURNS,
        trim_after_turns: int = DEFAULT_TRIM_AFTER_TURNS,
        story_states_checked: int = STORY_STATES_CHECKED,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.story_states_checked = max(0, int(story_states_checked))
        self.cache_size = max(0, int(cache_size))
        self.keep_turns = max(1, int(keep_turns))
        # trim_after_turns 0 turns trimming off.
        self.trim_after_turns = max(0, int(trim_after_turns))
        if self.trim_after_turns:
            # Above twice the turns kept: a trim may keep twice as many.
            self.trim_after_turns = max(self.trim_after_turns, 2 * self.keep_turns + 1)
        # When a tracker could not be trimmed: its number of turns before the next try.
        self._next_trim: dict[str, int] = {}
        self._trackers: OrderedDict[str, DialogueStateTracker] = OrderedDict()
        # How many of each cached tracker's events are in the database (or,
        # for a trimmed tracker, stand for events that are).
        self._stored: dict[str, int] = {}
        if self.engine.dialect.name == "sqlite":
            self._pool_sqlite_connections()
        self._insert_events = sa.insert(self.SQLEvent.__table__)

    def _pool_sqlite_connections(self) -> None:
        """One long-lived connection instead of a new one per session."""
        url = self.engine.url
        self.engine.dispose()
        # Sessions run one at a time, on the event loop's thread; the pool
        # lends a connection to one session at a time, whichever thread asks.
        self.engine = sa.create_engine(
            url,
            poolclass=sa.pool.QueuePool,
            pool_size=1,
            connect_args={"check_same_thread": False},
        )
        self.sessionmaker = sa.orm.session.sessionmaker(bind=self.engine)

    async def retrieve(self, sender_id: str) -> DialogueStateTracker | None:
        """The cached tracker, or the stored one (then cached)."""
        cached = self._trackers.get(sender_id)
        if cached is not None:
            self._trackers.move_to_end(sender_id)
            return cached
        tracker = await super().retrieve(sender_id)
        if tracker is not None:
            tracker = self._remember(tracker)
        return tracker

    async def save(self, tracker: DialogueStateTracker) -> None:
        """Writes the tracker's new events in one statement, then remembers it.

        The rows are those ``SQLTrackerStore.save`` writes, inserted together
        rather than one ORM object each.
        """
        await self.stream_events(tracker)
        if self._trackers.get(tracker.sender_id) is tracker:
            # A tracker handed out from the cache knows its unsaved events:
            # one short transaction on a connection, without an ORM session.
            rows = [event_row(tracker.sender_id, event) for event in self._unsaved(tracker)]
            if rows:
                with self.engine.begin() as connection:
                    connection.execute(self._insert_events, rows)
        else:
            # A tracker this store did not hand out (a new conversation): the
            # database says which of its events it has.
            with self.session_scope() as session:
                rows = [
                    event_row(tracker.sender_id, event)
                    for event in self._additional_events(session, tracker)
                ]
                if rows:
                    session.execute(self._insert_events, rows)
                    session.commit()
        self._remember(tracker)

    async def stream_events(self, tracker: DialogueStateTracker) -> None:
        """Streams the new events to the event broker, if there is one.

        Rasa finds them by comparing with the stored tracker, which for a
        cached tracker is the very same object; here they are the unsaved ones.
        """
        if self.event_broker is None:
            return
        if self._trackers.get(tracker.sender_id) is not tracker:
            await super().stream_events(tracker)
            return
        new_events = list(self._unsaved(tracker))
        await self._stream_new_events(self.event_broker, new_events, tracker.sender_id)

    def _unsaved(self, tracker: DialogueStateTracker) -> Iterator[Event]:
        """The events of a cached tracker added since it was last saved."""
        stored = self._stored[tracker.sender_id]
        return itertools.islice(tracker.events, stored, len(tracker.events))

    def _remember(self, tracker: DialogueStateTracker) -> DialogueStateTracker:
        """Caches the tracker (trimmed when it has grown long) and returns what was cached."""
        if self.cache_size == 0:
            return tracker
        sender_id = tracker.sender_id
        if self.trim_after_turns and self.domain is not None:
            tracker = self._trimmed(tracker, self.domain)
        self._trackers[sender_id] = tracker
        self._trackers.move_to_end(sender_id)
        self._stored[sender_id] = len(tracker.events)
        while len(self._trackers) > self.cache_size:
            evicted, _ = self._trackers.popitem(last=False)
            self._stored.pop(evicted, None)
            self._next_trim.pop(evicted, None)
        return tracker

    def _trimmed(self, tracker: DialogueStateTracker, domain: Domain) -> DialogueStateTracker:
        """The tracker trimmed to its last turns once it has too many, else itself."""
        sender_id = tracker.sender_id
        turns = len(turn_starts(tracker.events))
        if turns <= max(self.trim_after_turns, self._next_trim.get(sender_id, 0)):
            return tracker
        # When the last few turns are not enough (say, a run of turns the
        # stories never see), twice as many usually are.
        trimmed = trim_tracker(
            tracker, domain, self.keep_turns, self.story_states_checked
        ) or trim_tracker(tracker, domain, 2 * self.keep_turns, self.story_states_checked)
        if trimmed is None:
            # Not on every turn from now on: a few turns later.
            self._next_trim[sender_id] = turns + self.keep_turns
            return tracker
        self._next_trim.pop(sender_id, None)
        return trimmed


def event_row(sender_id: str, event: Event) -> dict[str, Any]:
    """The ``events`` table row ``SQLTrackerStore.save`` writes for an event."""
    data = event.as_dict()
    return {
        "sender_id": sender_id,
        "type_name": event.type_name,
        "timestamp": data.get("timestamp"),
        "intent_name": data.get("parse_data", {}).get("intent", {}).get(INTENT_NAME_KEY),
        "action_name": data.get("name"),
        "data": json.dumps(data),
    }


def turn_starts(events: Sequence[Event]) -> list[int]:
    """Indexes of the ``action_listen`` events that a user message follows."""
    return [
        index
        for index in range(len(events) - 1)
        if isinstance(events[index + 1], UserUttered)
        and isinstance(events[index], ActionExecuted)
        and events[index].action_name == ACTION_LISTEN_NAME
    ]


def trim_tracker(
    tracker: DialogueStateTracker,
    domain: Domain,
    keep_turns: int,
    story_states_checked: int = STORY_STATES_CHECKED,
) -> DialogueStateTracker | None:
    """The tracker with only its last ``keep_turns`` turns, or None when that would change it.

    The turns before the cut are replaced by one ``SlotSet`` for each slot
    they set, so every replay of the trimmed tracker (Rasa copies trackers by
    replaying them) ends in the same slots, and its latest dialogue states
    are those of the whole tracker. The cut is only made at the start of a
    turn where no form is active, nothing is paused and no follow-up action
    is pending: then the slots are the whole state carried across it. A
    trim is kept only if the latest dialogue states, as the rules and the
    memoised stories see them (unless ``story_states_checked`` is 0: no
    policy reads them), and the tracker's current state all come out the
    same; otherwise the whole tracker is kept.
    """
    events = list(tracker.events)
    starts = turn_starts(events)
    if len(starts) <= keep_turns:
        return None
    latest_cut = starts[-keep_turns]
    replay = tracker.init_copy()
    cut: int | None = None
    carried: list[Event] = []
    start_set = set(starts)
    for index, event in enumerate(events[: latest_cut + 1]):
        if index in start_set and _is_plain_turn_start(replay):
            cut, carried = index, _slot_events(replay, events[index].timestamp)
        replay.update(event)
    if cut is None or cut == 0:
        return None
    trimmed = tracker.init_copy()
    trimmed.model_id = tracker.model_id
    trimmed.assistant_id = tracker.assistant_id
    for event in itertools.chain(carried, events[cut:]):
        trimmed.update(event)
    if not _same_state(tracker, trimmed) or not _same_latest_states(
        tracker, trimmed, domain, story_states_checked
    ):
        logger.debug("Kept the whole tracker: trimming it would change its dialogue states.")
        return None
    return trimmed


def _is_plain_turn_start(tracker: DialogueStateTracker) -> bool:
    """Nothing but slots carries over: no active form, not paused, no follow-up."""
    return (
        tracker.active_loop_name is None
        and not tracker.is_paused()
        and tracker.followup_action is None
    )


def _slot_events(tracker: DialogueStateTracker, timestamp: float) -> list[Event]:
    """One ``SlotSet`` per slot that has been set (even to None), restoring it on replay."""
    return [
        SlotSet(slot.name, copy.deepcopy(slot.value), timestamp=timestamp)
        for slot in tracker.slots.values()
        if slot.has_been_set
    ]


def _same_state(whole: DialogueStateTracker, trimmed: DialogueStateTracker) -> bool:
    """The current state the processor and the actions read."""
    return (
        whole.current_slot_values() == trimmed.current_slot_values()
        and [slot.has_been_set for slot in whole.slots.values()]
        == [slot.has_been_set for slot in trimmed.slots.values()]
        and whole.active_loop == trimmed.active_loop
        and whole.latest_action == trimmed.latest_action
        and _same_event(whole.latest_message, trimmed.latest_message)
        and _same_event(whole.latest_bot_utterance, trimmed.latest_bot_utterance)
        and whole.followup_action == trimmed.followup_action
        and whole.is_paused() == trimmed.is_paused()
    )


def _same_event(whole: Event | None, trimmed: Event | None) -> bool:
    """Equal events; usually the very same object, as the trimmed tracker replays the kept ones.

    (Rasa compares events by encoding both with jsonpickle, which is slow.)
    """
    return whole is trimmed or whole == trimmed


def _same_latest_states(
    whole: DialogueStateTracker,
    trimmed: DialogueStateTracker,
    domain: Domain,
    story_states_checked: int = STORY_STATES_CHECKED,
) -> bool:
    """The latest dialogue states as the rules and as the memoised stories see them.

    At prediction time both policies read the states with unset slots
    included (``omit_unset_slots`` is only set when RulePolicy learns its
    rules), so those are the states compared.
    """
    for ignore_rule_only_turns, checked in (
        (False, RULE_STATES_CHECKED),
        (True, story_states_checked),
    ):
        if not checked:
            continue
        states = [
            domain.states_for_tracker_history(
                tracker, omit_unset_slots=False, ignore_rule_only_turns=ignore_rule_only_turns
            )
            for tracker in (whole, trimmed)
        ]
        # The trimmed history's first state differs (nothing before it),
        # so more than ``checked`` states are needed.
        if len(states[1]) <= checked or states[0][-checked:] != states[1][-checked:]:
            return False
    return True
