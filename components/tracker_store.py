"""An SQL tracker store that keeps recent trackers in memory between turns.

Rasa's SQL tracker store rebuilds a conversation's tracker from its stored
events on every message (load, decode, replay), and before each save counts
the stored events to find the new ones. Profiled under load on this
machine, the two took over 40% of the Rasa server's CPU time, growing with
the length of the conversation. This store keeps the trackers of recently
active conversations in memory and remembers how many of their events are
stored, so a turn costs one insert of its new events. Every event is still
written to the database, so a restarted server (or an evicted conversation)
carries on from there.

A cached tracker is only right while this process is the only writer of its
conversation: set ``cache_size: 0`` when several Rasa instances share the
tracker database (the production profile with a Redis lock store).
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.trackers import DialogueStateTracker

DEFAULT_CACHE_SIZE = 500


class CachedSQLTrackerStore(SQLTrackerStore):
    """``SQLTrackerStore`` plus an LRU cache of live trackers."""

    def __init__(self, *args: Any, cache_size: int = DEFAULT_CACHE_SIZE, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cache_size = max(0, int(cache_size))
        self._trackers: OrderedDict[str, DialogueStateTracker] = OrderedDict()
        # How many of each cached tracker's events are in the database.
        self._stored: dict[str, int] = {}

    async def retrieve(self, sender_id: str) -> DialogueStateTracker | None:
        """The cached tracker, or the stored one (then cached)."""
        cached = self._trackers.get(sender_id)
        if cached is not None:
            self._trackers.move_to_end(sender_id)
            return cached
        tracker = await super().retrieve(sender_id)
        if tracker is not None:
            self._remember(tracker)
        return tracker

    async def save(self, tracker: DialogueStateTracker) -> None:
        """Writes the tracker's new events, then remembers it."""
        await super().save(tracker)
        self._remember(tracker)

    def _additional_events(self, session: Any, tracker: DialogueStateTracker) -> Iterator[Any]:
        if self._trackers.get(tracker.sender_id) is tracker:
            stored = self._stored[tracker.sender_id]
            return itertools.islice(tracker.events, stored, len(tracker.events))
        # A tracker this store did not hand out (a new conversation): ask the database.
        return super()._additional_events(session, tracker)

    def _remember(self, tracker: DialogueStateTracker) -> None:
        if self.cache_size == 0:
            return
        sender_id = tracker.sender_id
        self._trackers[sender_id] = tracker
        self._trackers.move_to_end(sender_id)
        self._stored[sender_id] = len(tracker.events)
        while len(self._trackers) > self.cache_size:
            evicted, _ = self._trackers.popitem(last=False)
            self._stored.pop(evicted, None)
