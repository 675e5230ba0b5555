"""What a channel sender is given, what it returns, and how it says it failed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from bot.db.models import DeliveryState


@dataclass(frozen=True)
class Outgoing:
    """One message to deliver, as a channel sender sees it."""

    item_id: int
    message_id: int
    conversation_id: str
    channel: str
    recipient: str
    text: str
    buttons: list[dict[str, str]] = field(default_factory=list)
    markdown: str | None = None
    # When the citizen last wrote (WhatsApp's session window is counted from it).
    last_inbound_at: datetime | None = None
    attempt: int = 1


@dataclass(frozen=True)
class SendResult:
    """The provider accepted the message."""

    provider_message_id: str | None
    state: DeliveryState = DeliveryState.SENT


class SendError(Exception):
    """The provider did not take the message this time; it is retried with backoff."""


class PermanentSendError(SendError):
    """Retrying cannot help (the chat is gone, the number is invalid)."""


class UndeliverableError(SendError):
    """The channel's rules forbid sending this now; an officer has to act."""


class ChannelSender(Protocol):
    """A channel adapter's outbound half."""

    channel: str

    async def send(self, outgoing: Outgoing) -> SendResult:
        """Delivers one message or raises a :class:`SendError`."""
        ...
