"""Data functions for conversations and messages: small, typed, keyword-only.

Most take an ORM session. The message path's own steps (:func:`conversation_row`,
:func:`insert_inbound`, :func:`insert_outbound`, :func:`record_unanswered`)
take the session's connection and run prepared Core statements instead: they
run on every citizen message, and the ORM's bookkeeping around each statement
(identity map, unit of work) cost several times the SQL itself. What they
return is plain data, or messages built in memory that no session tracks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, Insert, bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.conversations.replies import BotReply
from bot.db.models import (
    Attachment,
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


@dataclass(frozen=True)
class ConversationRow:
    """What a turn reads of its conversation, read without the ORM."""

    id: str
    channel: str
    external_id: str
    owner: Owner
    topic: str | None
    country: str | None


@dataclass(frozen=True)
class NewMessage:
    """One message to insert: its words, its metadata, who sent it and its state."""

    text: str
    sender: Sender
    payload: dict[str, Any]
    state: DeliveryState


_CONVERSATION_ROW = select(
    Conversation.id,
    Conversation.channel,
    Conversation.external_id,
    Conversation.owner,
    Conversation.topic,
    Conversation.country,
).where(Conversation.id == bindparam("conversation_id"))
_MARK_INBOUND = (
    update(Conversation)
    .where(Conversation.id == bindparam("conversation_id"))
    .values(last_inbound_at=bindparam("now"))
)
_MESSAGE_ID = select(Message.id).where(
    Message.conversation_id == bindparam("conversation_id"),
    Message.provider_id == bindparam("provider_id"),
)
_SET_TOPIC = (
    update(Conversation)
    .where(Conversation.id == bindparam("conversation_id"))
    .values(topic=bindparam("topic"), country=bindparam("country"))
)
_MARK_ONE = (
    update(Message)
    .where(Message.id == bindparam("message_id"))
    .values(delivery_state=bindparam("state"))
)
_INSERT_OUTBOUND = insert(Message).returning(Message.id, sort_by_parameter_order=True)


def _insert_once(dialect: str, table: Any, unique: list[str]) -> Insert:
    """``INSERT ... ON CONFLICT DO NOTHING`` where the database has it (SQLite, PostgreSQL)."""
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing(index_elements=unique)
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=unique)
    raise NotImplementedError(f"the message path supports SQLite and PostgreSQL, not {dialect}")


_INSERT_INBOUND = {
    dialect: _insert_once(dialect, Message, ["conversation_id", "provider_id"]).returning(
        Message.id
    )
    for dialect in ("sqlite", "postgresql")
}
_INSERT_UNANSWERED = {
    dialect: _insert_once(dialect, UnansweredQuestion, ["message_id"]).returning(
        UnansweredQuestion.id
    )
    for dialect in ("sqlite", "postgresql")
}


def _for_dialect(statements: dict[str, Any], connection: Connection) -> Any:
    name = connection.dialect.name
    if name not in statements:
        raise NotImplementedError(f"the message path supports SQLite and PostgreSQL, not {name}")
    return statements[name]


def conversation_row(*, connection: Connection, conversation_id: str) -> ConversationRow | None:
    """The conversation's channel, citizen id, owner, topic and country, if it exists."""
    row = connection.execute(_CONVERSATION_ROW, {"conversation_id": conversation_id}).first()
    return ConversationRow(*row) if row is not None else None


def insert_inbound(
    *,
    connection: Connection,
    conversation_id: str,
    text: str,
    provider_id: str | None,
    payload: dict[str, Any],
    attachments: Sequence[dict[str, Any]] = (),
) -> Message | int:
    """Stores the citizen's message, or returns the id it was stored under before.

    A provider id seen before (a retried webhook, a resent widget message) is
    not stored again, so a turn is processed once: the unique constraint
    decides, in the same statement, so two tries at once cannot both win.
    A new message comes back as an unattached :class:`Message` carrying what
    was stored; ``attachments`` are column values of :class:`Attachment`.
    """
    now = utcnow()
    values = {
        "conversation_id": conversation_id,
        "direction": Direction.INBOUND,
        "sender": Sender.CITIZEN,
        "text": text,
        "payload": payload,
        "provider_id": provider_id,
        "delivery_state": DeliveryState.RECEIVED,
        "created_at": now,
    }
    inserted = connection.execute(_for_dialect(_INSERT_INBOUND, connection), values).first()
    if inserted is None:
        existing = connection.execute(
            _MESSAGE_ID, {"conversation_id": conversation_id, "provider_id": provider_id}
        ).scalar_one()
        return int(existing)
    message_id = int(inserted[0])
    if attachments:
        connection.execute(
            insert(Attachment),
            [{**attachment, "message_id": message_id} for attachment in attachments],
        )
    connection.execute(_MARK_INBOUND, {"conversation_id": conversation_id, "now": now})
    return Message(id=message_id, **values)


def insert_outbound(
    *, connection: Connection, conversation_id: str, messages: Sequence[NewMessage]
) -> list[Message]:
    """Stores replies to the citizen, in order; returns them as unattached messages."""
    if not messages:
        return []
    now = utcnow()
    rows = [
        {
            "conversation_id": conversation_id,
            "direction": Direction.OUTBOUND,
            "sender": message.sender,
            "text": message.text,
            "payload": message.payload,
            "provider_id": None,
            "delivery_state": message.state,
            "created_at": now,
        }
        for message in messages
    ]
    ids = connection.execute(_INSERT_OUTBOUND, rows).scalars().all()
    return [Message(id=message_id, **row) for message_id, row in zip(ids, rows, strict=True)]


def set_topic(
    *,
    connection: Connection,
    conversation: ConversationRow,
    topic: str | None,
    country: str | None,
) -> ConversationRow:
    """Records the latest topic and country a reply named (None keeps what was there)."""
    changes = {}
    if topic and topic != conversation.topic:
        changes["topic"] = topic
    if country and country != conversation.country:
        changes["country"] = country
    if not changes:
        return conversation
    topic, country = (
        changes.get("topic", conversation.topic),
        changes.get("country", conversation.country),
    )
    connection.execute(
        _SET_TOPIC, {"conversation_id": conversation.id, "topic": topic, "country": country}
    )
    return replace(conversation, topic=topic, country=country)


def mark_messages(
    *,
    connection: Connection,
    message_ids: Sequence[int],
    state: DeliveryState,
    only_from: Sequence[DeliveryState] = (),
) -> None:
    """Sets messages' delivery state (only those in ``only_from``, if given), unloaded."""
    if not message_ids:
        return
    if len(message_ids) == 1 and not only_from:  # every turn: prepared once
        connection.execute(_MARK_ONE, {"message_id": message_ids[0], "state": state})
        return
    statement = update(Message).where(Message.id.in_(message_ids))
    if only_from:
        statement = statement.where(Message.delivery_state.in_(only_from))
    connection.execute(statement.values(delivery_state=state))


@dataclass(frozen=True)
class InboundRow:
    """What deciding a turn reads of the citizen's message."""

    id: int
    text: str
    payload: dict[str, Any]
    state: DeliveryState
    # The kinds of what came with it ("photo", "location"...), in order.
    kinds: tuple[str, ...] = ()


_INBOUND_ROW = select(Message.text, Message.payload, Message.delivery_state).where(
    Message.id == bindparam("message_id")
)
_ATTACHMENT_KINDS = (
    select(Attachment.kind)
    .where(Attachment.message_id == bindparam("message_id"))
    .order_by(Attachment.id)
)


def inbound_row(*, connection: Connection, message_id: int) -> InboundRow:
    """A stored message as :class:`InboundRow`; LookupError when there is none."""
    row = connection.execute(_INBOUND_ROW, {"message_id": message_id}).first()
    if row is None:
        raise LookupError(f"no message {message_id}")
    kinds = connection.execute(_ATTACHMENT_KINDS, {"message_id": message_id}).scalars().all()
    return InboundRow(message_id, row.text, row.payload or {}, row.delivery_state, tuple(kinds))


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
    *,
    connection: Connection,
    conversation: ConversationRow,
    message_id: int,
    text: str,
    reason: UnansweredReason,
) -> bool:
    """Keeps a citizen's message the assistant could not answer, for the guidance admin.

    Once per message: a turn retried after a crash finds the row already
    there (returns False).
    """
    inserted = connection.execute(
        _for_dialect(_INSERT_UNANSWERED, connection),
        {
            "message_id": message_id,
            "conversation_id": conversation.id,
            "channel": conversation.channel,
            "country": conversation.country,
            "reason": reason,
            "text": text,
            "created_at": utcnow(),
        },
    ).first()
    return inserted is not None
