"""Outbox rows: enqueue with the message, claim when due, settle after sending.

Claims are compare-and-set updates on the row's state, so two workers (or
two app instances on PostgreSQL) never send the same item; a worker that
dies mid-send leaves a lease that expires and the item is tried again.
Items for one recipient go out in order: a recipient whose earlier item is
waiting for a retry gets nothing newer until it has gone.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, CursorResult, insert, or_, select, update
from sqlalchemy.orm import Session

from bot.db.models import (
    Conversation,
    DeliveryState,
    Message,
    OutboxItem,
    OutboxState,
    utcnow,
)
from bot.outbox.sending import Outgoing, SendResult

ERROR_LENGTH = 500
SCAN_LIMIT = 500
# Provider delivery reports only move a message forward: a late "sent" never
# undoes "delivered".
_DELIVERY_RANK = {
    DeliveryState.QUEUED: 0,
    DeliveryState.SENT: 1,
    DeliveryState.DELIVERED: 2,
    DeliveryState.FAILED: 3,
    DeliveryState.UNDELIVERABLE: 3,
}


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter, capped."""

    base_seconds: float
    max_seconds: float
    max_attempts: int

    def delay(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th failure (1-based)."""
        ceiling = min(self.max_seconds, self.base_seconds * 2 ** (attempts - 1))
        return float(ceiling * random.uniform(0.5, 1.0))


def enqueue(*, session: Session, message: Message, channel: str, recipient: str) -> OutboxItem:
    """Queues ``message`` for delivery (in the caller's transaction, with the message)."""
    item = OutboxItem(
        message_id=message.id, channel=channel, recipient=recipient, next_attempt_at=utcnow()
    )
    message.delivery_state = DeliveryState.QUEUED
    session.add(item)
    session.flush()
    return item


def enqueue_ids(
    *, connection: Connection, message_ids: Sequence[int], channel: str, recipient: str
) -> None:
    """Queues stored messages for delivery, in the caller's transaction, without the ORM.

    The messages must already be stored as ``queued`` (the message path
    inserts them so, with :func:`bot.conversations.store.insert_outbound`).
    """
    if message_ids:
        now = utcnow()
        connection.execute(
            insert(OutboxItem),
            [
                {
                    "message_id": message_id,
                    "channel": channel,
                    "recipient": recipient,
                    "next_attempt_at": now,
                }
                for message_id in message_ids
            ],
        )


def claim_due(*, session: Session, now: datetime, lease_seconds: float) -> list[Outgoing]:
    """Leases the items that may be sent now, oldest first, at most one run per recipient."""
    candidates = session.scalars(
        select(OutboxItem)
        .where(OutboxItem.state.in_([OutboxState.PENDING, OutboxState.SENDING]))
        .order_by(OutboxItem.id)
        .limit(SCAN_LIMIT)
    ).all()
    blocked: set[tuple[str, str]] = set()
    claimed: list[Outgoing] = []
    lease_until = now + timedelta(seconds=lease_seconds)
    for item in candidates:
        key = (item.channel, item.recipient)
        if key in blocked:
            continue
        leased = item.state == OutboxState.SENDING and _after(item.lease_until, now)
        if leased or _after(item.next_attempt_at, now):
            blocked.add(key)  # keep the recipient's order
            continue
        result: CursorResult[Any] = session.execute(  # type: ignore[assignment]
            update(OutboxItem)
            .where(
                OutboxItem.id == item.id,
                OutboxItem.state == item.state,
                OutboxItem.attempts == item.attempts,
            )
            .values(state=OutboxState.SENDING, lease_until=lease_until, attempts=item.attempts + 1)
        )
        if result.rowcount != 1:
            blocked.add(key)
            continue
        message = session.get_one(Message, item.message_id)
        conversation = session.get_one(Conversation, message.conversation_id)
        payload = message.payload or {}
        claimed.append(
            Outgoing(
                item_id=item.id,
                message_id=message.id,
                conversation_id=conversation.id,
                channel=item.channel,
                recipient=item.recipient,
                text=message.text,
                buttons=list(payload.get("buttons", [])),
                markdown=payload.get("markdown"),
                last_inbound_at=conversation.last_inbound_at,
                attempt=item.attempts + 1,
            )
        )
    return claimed


def mark_sent(*, session: Session, item_id: int, result: SendResult) -> Message:
    """Records the provider's acceptance."""
    item = session.get_one(OutboxItem, item_id)
    item.state = OutboxState.SENT
    item.sent_at = utcnow()
    item.lease_until = None
    item.last_error = None
    item.provider_message_id = result.provider_message_id
    _advance(item.message, result.state)
    return item.message


def mark_retry(*, session: Session, item_id: int, error: str, backoff: Backoff) -> Message:
    """Schedules another attempt, or gives up after the last one."""
    item = session.get_one(OutboxItem, item_id)
    item.last_error = error[:ERROR_LENGTH]
    item.lease_until = None
    if item.attempts >= backoff.max_attempts:
        item.state = OutboxState.FAILED
        item.message.delivery_state = DeliveryState.FAILED
    else:
        item.state = OutboxState.PENDING
        item.next_attempt_at = utcnow() + timedelta(seconds=backoff.delay(item.attempts))
    return item.message


def mark_final(*, session: Session, item_id: int, error: str, undeliverable: bool) -> Message:
    """Stops trying: the provider refused for good, or the channel forbids sending."""
    item = session.get_one(OutboxItem, item_id)
    item.last_error = error[:ERROR_LENGTH]
    item.lease_until = None
    item.state = OutboxState.UNDELIVERABLE if undeliverable else OutboxState.FAILED
    item.message.delivery_state = (
        DeliveryState.UNDELIVERABLE if undeliverable else DeliveryState.FAILED
    )
    return item.message


def requeue(*, session: Session, message_id: int) -> bool:
    """Tries a failed or undeliverable message again (an officer's decision)."""
    item = session.scalars(select(OutboxItem).where(OutboxItem.message_id == message_id)).first()
    if item is None or item.state not in (OutboxState.FAILED, OutboxState.UNDELIVERABLE):
        return False
    item.state = OutboxState.PENDING
    item.attempts = 0
    item.next_attempt_at = utcnow()
    item.message.delivery_state = DeliveryState.QUEUED
    return True


def record_delivery_report(
    *, session: Session, provider_message_id: str, state: DeliveryState, error: str | None = None
) -> Message | None:
    """Applies a provider's status callback; returns the message when it changed."""
    item = session.scalars(
        select(OutboxItem).where(OutboxItem.provider_message_id == provider_message_id)
    ).first()
    if item is None:
        return None
    if error:
        item.last_error = error[:ERROR_LENGTH]
    if _advance(item.message, state):
        if state in (DeliveryState.FAILED, DeliveryState.UNDELIVERABLE):
            item.state = OutboxState.FAILED
        return item.message
    return None


def pending_count(*, session: Session) -> int:
    """Items not settled yet (for health and tests)."""
    return len(
        session.scalars(
            select(OutboxItem.id).where(
                or_(
                    OutboxItem.state == OutboxState.PENDING, OutboxItem.state == OutboxState.SENDING
                )
            )
        ).all()
    )


def _advance(message: Message, state: DeliveryState) -> bool:
    current = _DELIVERY_RANK.get(message.delivery_state, -1)
    if _DELIVERY_RANK.get(state, -1) > current:
        message.delivery_state = state
        return True
    return False


def _after(moment: datetime | None, now: datetime) -> bool:
    if moment is None:
        return False
    if moment.tzinfo is None:  # SQLite returns naive datetimes
        moment = moment.replace(tzinfo=now.tzinfo)
    return moment > now


def release(*, session: Session, item_ids: list[int]) -> None:
    """Gives leased items back untried (an earlier item of their recipient failed)."""
    for item_id in item_ids:
        item = session.get_one(OutboxItem, item_id)
        earlier = session.scalars(
            select(OutboxItem.next_attempt_at)
            .where(
                OutboxItem.channel == item.channel,
                OutboxItem.recipient == item.recipient,
                OutboxItem.state == OutboxState.PENDING,
                OutboxItem.id < item.id,
            )
            .order_by(OutboxItem.id)
        ).first()
        item.state = OutboxState.PENDING
        item.attempts = max(0, item.attempts - 1)
        item.lease_until = None
        item.next_attempt_at = earlier or utcnow()
