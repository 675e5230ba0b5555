"""Data functions for conversations and messages: small, typed, keyword-only."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.conversations.replies import BotReply
from bot.db.models import (
    Conversation,
    DeliveryState,
    Direction,
    Handoff,
    Message,
    Owner,
    Sender,
    UnansweredQuestion,
    UnansweredReason,
    utcnow,
)

URGENT_PRIORITY = 10
SUMMARY_LENGTH = 500


def create_conversation(
    *, session: Session, channel: str, external_id: str | None = None
) -> Conversation:
    """A new conversation owned by the bot (web chat: the external id is its own id)."""
    conversation = Conversation(channel=channel, external_id=external_id or "")
    session.add(conversation)
    session.flush()
    if not external_id:
        conversation.external_id = conversation.id
    return conversation


def get_or_create_conversation(*, session: Session, channel: str, external_id: str) -> Conversation:
    """The conversation for a channel's own id (chat id, phone number), made on first contact."""
    found = session.scalars(
        select(Conversation).where(
            Conversation.channel == channel, Conversation.external_id == external_id
        )
    ).one_or_none()
    return found or create_conversation(session=session, channel=channel, external_id=external_id)


def store_inbound(
    *, session: Session, conversation_id: str, text: str, provider_id: str | None
) -> tuple[Message, bool]:
    """Stores the citizen's message; returns it and whether it is new.

    A provider id seen before (a retried webhook, a resent widget message)
    returns the stored message and False, so a turn is processed once.
    """
    message = Message(
        conversation_id=conversation_id,
        direction=Direction.INBOUND,
        sender=Sender.CITIZEN,
        text=text,
        provider_id=provider_id,
        delivery_state=DeliveryState.RECEIVED,
    )
    if provider_id is None:
        # Nothing to collide with: no savepoint needed.
        session.add(message)
        session.flush()
        return message, True
    existing = find_by_provider_id(
        session=session, conversation_id=conversation_id, provider_id=provider_id
    )
    if existing is not None:
        return existing, False
    try:
        with session.begin_nested():
            session.add(message)
    except IntegrityError:
        # Lost a race with the same retry arriving concurrently.
        existing = find_by_provider_id(
            session=session, conversation_id=conversation_id, provider_id=provider_id
        )
        assert existing is not None
        return existing, False
    return message, True


def find_by_provider_id(
    *, session: Session, conversation_id: str, provider_id: str
) -> Message | None:
    """The message a provider already delivered with this id, if any."""
    return session.scalars(
        select(Message).where(
            Message.conversation_id == conversation_id, Message.provider_id == provider_id
        )
    ).one_or_none()


def store_outbound(
    *,
    session: Session,
    conversation_id: str,
    reply: BotReply,
    sender: Sender = Sender.BOT,
    state: DeliveryState = DeliveryState.DELIVERED,
    flush: bool = True,
) -> Message:
    """Stores one reply to the citizen with its metadata.

    ``flush=False`` leaves the insert to the commit (in the order replies were
    added), for callers that need no id before it: one flush per reply is a
    good part of a turn's work.
    """
    message = Message(
        conversation_id=conversation_id,
        direction=Direction.OUTBOUND,
        sender=sender,
        text=reply.text,
        payload=reply.payload(),
        delivery_state=state,
    )
    session.add(message)
    if flush:
        session.flush()
    return message


def replies_to(*, session: Session, inbound: Message) -> list[Message]:
    """The outbound messages stored after ``inbound`` and before the next inbound one."""
    later = session.scalars(
        select(Message)
        .where(Message.conversation_id == inbound.conversation_id, Message.id > inbound.id)
        .order_by(Message.id)
    ).all()
    replies = []
    for message in later:
        if message.direction == Direction.INBOUND:
            break
        replies.append(message)
    return replies


def messages_after(*, session: Session, conversation_id: str, after: int) -> list[Message]:
    """The transcript after a message id, oldest first."""
    return list(
        session.scalars(
            select(Message)
            .where(Message.conversation_id == conversation_id, Message.id > after)
            .order_by(Message.id)
        ).all()
    )


def open_handoff(
    *,
    session: Session,
    conversation: Conversation,
    reason: str,
    urgent: bool,
    summary: str,
) -> Handoff:
    """Puts the conversation in the officers' queue (or returns its open entry)."""
    current = open_handoff_for(session=session, conversation_id=conversation.id)
    priority = URGENT_PRIORITY if urgent else 0
    if current is not None:
        # Escalate an existing entry rather than queue the citizen twice.
        if priority > current.priority:
            current.priority = priority
            current.reason = reason
        return current
    handoff = Handoff(
        conversation_id=conversation.id,
        reason=reason,
        priority=priority,
        topic=conversation.topic,
        country=conversation.country,
        summary=summary[:SUMMARY_LENGTH],
    )
    session.add(handoff)
    conversation.owner = Owner.QUEUE
    conversation.priority = max(conversation.priority, priority)
    session.flush()
    return handoff


def open_handoff_for(*, session: Session, conversation_id: str) -> Handoff | None:
    """The conversation's handoff that is not closed yet, if any."""
    return session.scalars(
        select(Handoff).where(
            Handoff.conversation_id == conversation_id, Handoff.closed_at.is_(None)
        )
    ).first()


def close_handoff(*, session: Session, handoff: Handoff, outcome: str) -> None:
    """Closes a handoff and gives the conversation back to the bot."""
    handoff.closed_at = utcnow()
    handoff.outcome = outcome
    handoff.conversation.owner = Owner.BOT


def record_unanswered(
    *, session: Session, conversation: Conversation, message: Message, reason: UnansweredReason
) -> UnansweredQuestion:
    """Keeps a citizen's message the assistant could not answer, for the guidance admin.

    Once per message: a turn retried after a crash finds the row already there.
    """
    existing = session.scalars(
        select(UnansweredQuestion).where(UnansweredQuestion.message_id == message.id)
    ).one_or_none()
    if existing is not None:
        return existing
    row = UnansweredQuestion(
        message_id=message.id,
        conversation_id=conversation.id,
        channel=conversation.channel,
        country=conversation.country,
        reason=reason,
        text=message.text,
    )
    session.add(row)
    session.flush()
    return row
