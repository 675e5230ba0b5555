"""The console's live channel on the event hub, and the events sent on it.

Every console subscribes to :data:`CONSOLE_CHANNEL` for queue changes; a
conversation page also subscribes to its conversation's own key, where the
message path and the outbox already publish messages and delivery states.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from bot.db.models import Message

# A reserved hub key: conversation ids are UUIDs, so it never collides.
CONSOLE_CHANNEL = "console"


class Publisher(Protocol):
    """What publishing needs from the event hub."""

    def publish(self, conversation_id: str, event: dict[str, Any]) -> None: ...


def queue_event(
    *, change: str, conversation_id: str, urgent: bool = False, by: str | None = None
) -> dict[str, Any]:
    """A queue change: ``opened``, ``taken``, ``transferred``, ``returned`` or ``closed``."""
    return {
        "type": "queue",
        "change": change,
        "conversation_id": conversation_id,
        "urgent": urgent,
        "by": by,
    }


def publish_handoffs(hub: Publisher, conversation_id: str, messages: Iterable[Message]) -> None:
    """Tells consoles when the bot's replies put (or kept) a conversation in the queue.

    Called by the message path after the replies are committed.
    """
    payloads = [message.payload or {} for message in messages]
    if any(payload.get("handoff") for payload in payloads):
        urgent = any(payload.get("urgent") for payload in payloads)
        hub.publish(
            CONSOLE_CHANNEL,
            queue_event(change="opened", conversation_id=conversation_id, urgent=urgent),
        )
