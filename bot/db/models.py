"""SQLAlchemy 2 models: conversations, messages, handoffs and posts."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bot.db.base import Base

UUID_LENGTH = 36
CHANNEL_LENGTH = 16
EXTERNAL_ID_LENGTH = 128
PROVIDER_ID_LENGTH = 128
TOPIC_LENGTH = 48
COUNTRY_LENGTH = 2
REASON_LENGTH = 48
NAME_LENGTH = 200
PHONE_LENGTH = 40
TIMEZONE_LENGTH = 64


def utcnow() -> datetime:
    """Timezone-aware now, the only clock models use."""
    return datetime.now(UTC)


def new_uuid() -> str:
    """A random UUID as text (portable across SQLite and PostgreSQL)."""
    return str(uuid.uuid4())


class Owner(enum.StrEnum):
    """Who answers the citizen: the bot, nobody yet (queued), or an officer."""

    BOT = "bot"
    QUEUE = "queue"
    OFFICER = "officer"


class Direction(enum.StrEnum):
    """Whether a message came from the citizen or went to them."""

    INBOUND = "inbound"
    OUTBOUND = "outbound"


class Sender(enum.StrEnum):
    """Who wrote a message."""

    CITIZEN = "citizen"
    BOT = "bot"
    OFFICER = "officer"
    SYSTEM = "system"


class DeliveryState(enum.StrEnum):
    """Where an outbound message is on its way to the citizen."""

    RECEIVED = "received"
    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    # Stored as plain strings: readable in SQL and free of PostgreSQL enum types.
    return Enum(
        cls, name=name, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e]
    )


class Conversation(Base):
    """One citizen's thread on one channel, and who currently owns it."""

    __tablename__ = "conversation"
    __table_args__ = (UniqueConstraint("channel", "external_id"),)

    id: Mapped[str] = mapped_column(String(UUID_LENGTH), primary_key=True, default=new_uuid)
    channel: Mapped[str] = mapped_column(String(CHANNEL_LENGTH))
    external_id: Mapped[str] = mapped_column(String(EXTERNAL_ID_LENGTH))
    owner: Mapped[Owner] = mapped_column(_enum(Owner, "owner"), default=Owner.BOT)
    topic: Mapped[str | None] = mapped_column(String(TOPIC_LENGTH))
    country: Mapped[str | None] = mapped_column(String(COUNTRY_LENGTH))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )

    messages: Mapped[list[Message]] = relationship(
        back_populates="conversation", order_by="Message.id"
    )
    handoffs: Mapped[list[Handoff]] = relationship(back_populates="conversation")


class Message(Base):
    """Every message in or out, stored before anything acts on it."""

    __tablename__ = "message"
    __table_args__ = (
        # A provider retrying a webhook sends the same id: stored once.
        UniqueConstraint("conversation_id", "provider_id"),
        Index("ix_message_conversation_id_id", "conversation_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversation.id", ondelete="CASCADE"))
    direction: Mapped[Direction] = mapped_column(_enum(Direction, "direction"))
    sender: Mapped[Sender] = mapped_column(_enum(Sender, "sender"))
    text: Mapped[str] = mapped_column(Text, default="")
    # Reply metadata (buttons, topic, country, urgent, handoff) as the API shows it.
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    provider_id: Mapped[str | None] = mapped_column(String(PROVIDER_ID_LENGTH))
    delivery_state: Mapped[DeliveryState] = mapped_column(
        _enum(DeliveryState, "delivery_state"), default=DeliveryState.RECEIVED
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    conversation: Mapped[Conversation] = relationship(back_populates="messages")


class Handoff(Base):
    """A conversation waiting for, or handled by, a human duty officer."""

    __tablename__ = "handoff"
    __table_args__ = (Index("ix_handoff_open_queue", "closed_at", "priority", "queued_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversation.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(String(REASON_LENGTH))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    topic: Mapped[str | None] = mapped_column(String(TOPIC_LENGTH))
    country: Mapped[str | None] = mapped_column(String(COUNTRY_LENGTH))
    summary: Mapped[str] = mapped_column(Text, default="")
    queued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    assigned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str | None] = mapped_column(String(REASON_LENGTH))

    conversation: Mapped[Conversation] = relationship(back_populates="handoffs")


class Post(Base):
    """A British embassy, high commission or consulate serving one country."""

    __tablename__ = "post"
    __table_args__ = (UniqueConstraint("country", "city", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    country: Mapped[str] = mapped_column(String(COUNTRY_LENGTH), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    city: Mapped[str] = mapped_column(String(NAME_LENGTH))
    address: Mapped[str] = mapped_column(Text)
    phone: Mapped[str] = mapped_column(String(PHONE_LENGTH))
    email: Mapped[str] = mapped_column(String(NAME_LENGTH))
    opening_hours: Mapped[str] = mapped_column(Text)
    timezone: Mapped[str] = mapped_column(String(TIMEZONE_LENGTH))
    emergency_phone: Mapped[str] = mapped_column(String(PHONE_LENGTH))
    # The main post (usually in the capital) is listed first.
    rank: Mapped[int] = mapped_column(Integer, default=0)
    is_sample: Mapped[bool] = mapped_column(Boolean, default=False)
