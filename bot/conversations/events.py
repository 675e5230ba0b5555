"""In-process fan-out of new messages to live subscribers (web chat, console).

The embedded profile runs one app process; the production profile replaces
this with Redis pub/sub behind the same two methods.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

logger = logging.getLogger(__name__)

SUBSCRIBER_BUFFER = 256


class EventHub:
    """Publishes events per conversation to every current subscriber."""

    def __init__(self) -> None:
        self._subscribers: dict[str, set[asyncio.Queue[dict[str, Any]]]] = defaultdict(set)

    def publish(self, conversation_id: str, event: dict[str, Any]) -> None:
        """Delivers ``event`` to every subscriber of the conversation, never blocking."""
        for queue in list(self._subscribers.get(conversation_id, ())):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                # A stalled client loses live events, not data: it re-reads the
                # transcript with ?after= when it reconnects.
                logger.warning("dropping live event for a slow subscriber of %s", conversation_id)

    @asynccontextmanager
    async def subscribe(self, conversation_id: str) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        """A queue receiving the conversation's events while the context is open."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(SUBSCRIBER_BUFFER)
        self._subscribers[conversation_id].add(queue)
        try:
            yield queue
        finally:
            subscribers = self._subscribers.get(conversation_id)
            if subscribers is not None:
                subscribers.discard(queue)
                if not subscribers:
                    del self._subscribers[conversation_id]
