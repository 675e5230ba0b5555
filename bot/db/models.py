"""SQLAlchemy 2 models: conversations, messages, handoffs and posts."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Time,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bot.db.base import Base
from bot.insight.sql import utc_hour

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
TITLE_LENGTH = 200
URL_LENGTH = 500
STATUS_LENGTH = 16
REFERENCE_LENGTH = 32
HASH_LENGTH = 64
ACTOR_LENGTH = 120
ACTION_LENGTH = 64


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
    """Where a message is: inbound ones in the turn, outbound ones on their way.

    Inbound: ``received`` (stored, turn not done yet), ``held`` (the assistant
    was down; answered when it recovers), ``handled`` (the bot answered it or
    it went to a person). Outbound: ``queued`` in the outbox, ``sent`` to the
    provider, ``delivered`` to the citizen's device, ``failed`` after every
    retry, ``undeliverable`` when the channel's rules forbid sending it (such
    as WhatsApp's 24-hour window with no template): an officer must act.
    """

    RECEIVED = "received"
    HELD = "held"
    HANDLED = "handled"
    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    UNDELIVERABLE = "undeliverable"


class OutboxState(enum.StrEnum):
    """An outbox item's progress; ``sending`` is leased to one worker."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    UNDELIVERABLE = "undeliverable"


def _enum(cls: type[enum.Enum], name: str, length: int = 16) -> Enum:
    # Stored as plain strings: readable in SQL and free of PostgreSQL enum types.
    return Enum(
        cls,
        name=name,
        native_enum=False,
        length=length,
        values_callable=lambda members: [member.value for member in members],
    )


HANDOFF_DURATIONS = ("wait_seconds", "reply_seconds", "close_seconds")


def handoff_duration_indexes(duration: str) -> dict[str, list[str]]:
    """Name -> columns of the two indexes that hand one handoff time out in order.

    One leads with the time (all handoffs, or filtered as the scan goes), one
    with the country and then the time (one post's handoffs); both carry what
    the dashboard filters by, so SQLite never reads the table.
    """
    short = duration.removesuffix("_seconds")
    rest = ["queued_at", "country", "topic", "channel"]
    return {
        f"ix_handoff_insight_{short}": [duration, *rest],
        f"ix_handoff_insight_country_{short}": [
            "country",
            duration,
            *(column for column in rest if column != "country"),
        ],
    }


def _insight_columns(lead: str) -> list[str]:
    """The dashboard's covering index columns, ``lead`` first, then the date."""
    rest = ["created_at", "country", "topic", "channel", "priority", "message_count"]
    return [lead, *(column for column in rest if column != lead)]


class Conversation(Base):
    """One citizen's thread on one channel, and who currently owns it."""

    __tablename__ = "conversation"
    __table_args__ = (
        UniqueConstraint("channel", "external_id"),
        # The insight dashboard (bot/insight) counts a date range by day, topic,
        # country and channel. Each index leads with what one figure groups by
        # and carries every column the figures read, so SQLite walks one index
        # in order (no table, no sort) and PostgreSQL can scan index-only.
        *(
            Index(f"ix_conversation_insight_{lead}", *_insight_columns(lead))
            for lead in ("created_at", "topic", "country", "channel")
        ),
    )

    id: Mapped[str] = mapped_column(String(UUID_LENGTH), primary_key=True, default=new_uuid)
    channel: Mapped[str] = mapped_column(String(CHANNEL_LENGTH))
    external_id: Mapped[str] = mapped_column(String(EXTERNAL_ID_LENGTH))
    owner: Mapped[Owner] = mapped_column(_enum(Owner, "owner"), default=Owner.BOT)
    topic: Mapped[str | None] = mapped_column(String(TOPIC_LENGTH))
    country: Mapped[str | None] = mapped_column(String(COUNTRY_LENGTH))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    # When the citizen last wrote: WhatsApp allows free text for 24 hours after.
    last_inbound_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )
    # Made by ``bot insight generate`` for demos and benchmarks, never by a citizen.
    is_synthetic: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Messages in the conversation, kept by database triggers on the message
    # table (migration 0007), so the dashboard sums it instead of joining messages.
    message_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    messages: Mapped[list[Message]] = relationship(
        back_populates="conversation", order_by="Message.id"
    )
    handoffs: Mapped[list[Handoff]] = relationship(back_populates="conversation")


# The dashboard's hour-of-day figure groups by country and UTC hour: this
# expression index hands SQLite the rows in that order (see bot/insight/queries.py).
Index(
    "ix_conversation_insight_hour",
    Conversation.country,
    utc_hour(Conversation.created_at),
    Conversation.created_at,
    Conversation.priority,
    Conversation.message_count,
)


class Message(Base):
    """Every message in or out, stored before anything acts on it."""

    __tablename__ = "message"
    __table_args__ = (
        # A provider retrying a webhook sends the same id: stored once.
        UniqueConstraint("conversation_id", "provider_id"),
        Index("ix_message_conversation_id_id", "conversation_id", "id"),
        # Recovery looks for inbound turns not yet done (received or held).
        Index("ix_message_direction_state", "direction", "delivery_state"),
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
    # The officer who wrote an officer message.
    officer_id: Mapped[int | None] = mapped_column(ForeignKey("officer.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    conversation: Mapped[Conversation] = relationship(back_populates="messages")
    attachments: Mapped[list[Attachment]] = relationship(
        back_populates="message", order_by="Attachment.id"
    )


class Attachment(Base):
    """A photo, file, voice note or location a citizen sent, kept for an officer.

    The provider keeps the bytes; we keep what is needed to fetch them (a
    Telegram file id, a Twilio media URL) and what the officer sees first.
    """

    __tablename__ = "attachment"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("message.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(24))
    content_type: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    provider_ref: Mapped[str] = mapped_column(Text, default="")
    filename: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    size_bytes: Mapped[int | None] = mapped_column(Integer)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    message: Mapped[Message] = relationship(back_populates="attachments")


class OutboxItem(Base):
    """One outbound message waiting for, or done with, delivery to a channel."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # One item per message: a message is never queued (so never sent) twice.
    message_id: Mapped[int] = mapped_column(
        ForeignKey("message.id", ondelete="CASCADE"), unique=True
    )
    channel: Mapped[str] = mapped_column(String(CHANNEL_LENGTH))
    recipient: Mapped[str] = mapped_column(String(EXTERNAL_ID_LENGTH))
    state: Mapped[OutboxState] = mapped_column(
        _enum(OutboxState, "outbox_state"), default=OutboxState.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    provider_message_id: Mapped[str | None] = mapped_column(String(PROVIDER_ID_LENGTH), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    message: Mapped[Message] = relationship()


class Handoff(Base):
    """A conversation waiting for, or handled by, a human duty officer."""

    __tablename__ = "handoff"
    __table_args__ = (
        Index("ix_handoff_open_queue", "closed_at", "priority", "queued_at"),
        # The insight dashboard's service figures: handoffs queued in a date
        # range, grouped and counted from this index alone.
        Index(
            "ix_handoff_insight",
            "queued_at",
            "country",
            "topic",
            "priority",
            "reason",
            "outcome",
            "closed_at",
            "channel",
            "wait_seconds",
            "reply_seconds",
            "close_seconds",
            "is_repeat",
            "conversation_id",
        ),
        # A conversation's handoffs in order (the open one; is_repeat).
        Index("ix_handoff_conversation", "conversation_id", "id"),
        # Percentiles of each time, read in order from an index (migration 0008):
        # over all handoffs, and by country for the figures by post.
        *(
            Index(index, *columns)
            for duration in HANDOFF_DURATIONS
            for index, columns in handoff_duration_indexes(duration).items()
        ),
    )

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
    # The officer who owns it now; set by an atomic take-over.
    officer_id: Mapped[int | None] = mapped_column(ForeignKey("officer.id"), index=True)
    first_reply_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Paging the on-call supervisor when an urgent entry waits too long.
    escalated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    escalations: Mapped[int] = mapped_column(Integer, default=0)
    # Queued while nobody was on duty: how the citizen asked to be called back.
    callback_details: Mapped[str | None] = mapped_column(Text)
    # The conversation's channel, copied when queued (by the insert trigger of
    # migration 0008) as topic and country are: the dashboard filters handoffs
    # by channel without joining their conversations.
    channel: Mapped[str | None] = mapped_column(String(CHANNEL_LENGTH))
    # The dashboard's times in whole seconds, kept by database triggers whenever
    # the timestamps change (migration 0008), so percentiles read an index in
    # order instead of computing and sorting every handoff's times:
    # assigned_at - queued_at, first_reply_at - assigned_at, closed_at - queued_at.
    wait_seconds: Mapped[int | None] = mapped_column(Integer)
    reply_seconds: Mapped[int | None] = mapped_column(Integer)
    close_seconds: Mapped[int | None] = mapped_column(Integer)
    # The conversation had been handed off before this one (set by the insert
    # trigger): the dashboard counts conversations handed off without a DISTINCT.
    is_repeat: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    conversation: Mapped[Conversation] = relationship(back_populates="handoffs")
    officer: Mapped[Officer | None] = relationship()


class OfficerRole(enum.StrEnum):
    """What a member of staff may do.

    Officers and supervisors work the console (supervisors are paged and see
    the dashboard); editors write guidance and reviewers also approve it in
    the guidance admin; admins may do everything, in both.
    """

    OFFICER = "officer"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"
    EDITOR = "editor"
    REVIEWER = "reviewer"


class Presence(enum.StrEnum):
    """Whether an officer is at the console."""

    ONLINE = "online"
    AWAY = "away"
    OFFLINE = "offline"


class Officer(Base):
    """A duty officer, supervisor or admin of the console."""

    __tablename__ = "officer"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    email: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    role: Mapped[OfficerRole] = mapped_column(
        _enum(OfficerRole, "officer_role"), default=OfficerRole.OFFICER
    )
    timezone: Mapped[str] = mapped_column(String(TIMEZONE_LENGTH), default="Europe/London")
    # For paging by SMS (supervisors on call).
    phone: Mapped[str | None] = mapped_column(String(PHONE_LENGTH))
    password_hash: Mapped[str] = mapped_column(String(HASH_LENGTH * 4), default="")
    totp_secret: Mapped[str | None] = mapped_column(String(HASH_LENGTH))
    # The last TOTP time step accepted: a code is never accepted twice.
    totp_last_step: Mapped[int | None] = mapped_column(Integer)
    presence: Mapped[Presence] = mapped_column(
        _enum(Presence, "presence"), default=Presence.OFFLINE
    )
    presence_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    shifts: Mapped[list[Shift]] = relationship(
        back_populates="officer", cascade="all, delete-orphan"
    )


class Shift(Base):
    """A weekly shift in the officer's own time zone; it may run past midnight."""

    __tablename__ = "shift"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    officer_id: Mapped[int] = mapped_column(
        ForeignKey("officer.id", ondelete="CASCADE"), index=True
    )
    weekday: Mapped[int] = mapped_column(Integer)  # 0 Monday .. 6 Sunday, local
    starts: Mapped[time] = mapped_column(Time)
    ends: Mapped[time] = mapped_column(Time)  # ends <= starts: runs into the next day
    on_call: Mapped[bool] = mapped_column(Boolean, default=False)

    officer: Mapped[Officer] = relationship(back_populates="shifts")


class OfficerNote(Base):
    """An internal note on a conversation; the citizen never sees it."""

    __tablename__ = "officer_note"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversation.id", ondelete="CASCADE"), index=True
    )
    officer_id: Mapped[int] = mapped_column(ForeignKey("officer.id"))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    officer: Mapped[Officer] = relationship()


class CannedReply(Base):
    """A ready-made reply officers can send or adapt."""

    __tablename__ = "canned_reply"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    title: Mapped[str] = mapped_column(String(TITLE_LENGTH), unique=True)
    text: Mapped[str] = mapped_column(Text)


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


class RevisionStatus(enum.StrEnum):
    """Where a guidance revision is in its life; only ``published`` is ever served.

    A published revision is served from its ``publish_at`` (scheduled when in
    the future) until its ``expires_at``, and only while it is the article's
    latest publication that has started: an older one never comes back.
    """

    DRAFT = "draft"
    IN_REVIEW = "in_review"
    PUBLISHED = "published"
    ARCHIVED = "archived"


class AdviseAgainst(enum.StrEnum):
    """The FCDO's travel warning level for a country."""

    NONE = "none"
    ALL_BUT_ESSENTIAL_PARTS = "all-but-essential-parts"
    ALL_PARTS = "all-parts"
    ALL_BUT_ESSENTIAL = "all-but-essential"
    ALL = "all"


class GuidanceArticle(Base):
    """What the assistant says on one topic, generic or for one country.

    The text lives in revisions; a country-specific article beats the generic
    one for that country. At most one generic article per topic (checked by
    the data functions, as NULLs are distinct in unique constraints).
    """

    __tablename__ = "guidance_article"
    __table_args__ = (UniqueConstraint("topic", "country"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    topic: Mapped[str] = mapped_column(String(TOPIC_LENGTH), index=True)
    country: Mapped[str | None] = mapped_column(String(COUNTRY_LENGTH))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    revisions: Mapped[list[GuidanceRevision]] = relationship(
        back_populates="article", order_by="GuidanceRevision.number"
    )


class GuidanceRevision(Base):
    """One version of an article's text, kept for ever with who and why."""

    __tablename__ = "guidance_revision"
    __table_args__ = (
        UniqueConstraint("article_id", "number"),
        Index("ix_guidance_revision_article_id_status", "article_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("guidance_article.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    status: Mapped[RevisionStatus] = mapped_column(
        _enum(RevisionStatus, "revision_status"), default=RevisionStatus.DRAFT
    )
    title: Mapped[str] = mapped_column(String(TITLE_LENGTH))
    body: Mapped[str] = mapped_column(Text)  # Markdown
    source_url: Mapped[str] = mapped_column(String(URL_LENGTH))
    last_reviewed: Mapped[date] = mapped_column(Date)
    review_by: Mapped[date | None] = mapped_column(Date)
    example_questions: Mapped[list[str]] = mapped_column(JSON, default=list)
    author: Mapped[str] = mapped_column(String(ACTOR_LENGTH))
    reviewer: Mapped[str | None] = mapped_column(String(ACTOR_LENGTH))
    change_note: Mapped[str] = mapped_column(Text, default="")
    is_sample: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # When it was approved (or rolled back to); publish_at is when it goes live.
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    publish_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    submitted_by: Mapped[str | None] = mapped_column(String(ACTOR_LENGTH))
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The reviewer's words when approving or sending back.
    review_note: Mapped[str] = mapped_column(Text, default="")
    # A rollback copies this earlier revision's number.
    restored_from: Mapped[int | None] = mapped_column(Integer)

    article: Mapped[GuidanceArticle] = relationship(back_populates="revisions")


class GuidanceFeedback(Base):
    """A citizen's "Was this helpful?" answer to one guidance revision.

    One answer per conversation and revision (a second press changes it).
    """

    __tablename__ = "guidance_feedback"
    __table_args__ = (
        UniqueConstraint("conversation_id", "revision_id"),
        Index("ix_guidance_feedback_article_id_created_at", "article_id", "created_at"),
        # The insight dashboard counts answers given in a date range.
        Index(
            "ix_guidance_feedback_insight",
            "created_at",
            "article_id",
            "helpful",
            "channel",
            "conversation_id",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("guidance_article.id", ondelete="CASCADE"))
    revision_id: Mapped[int] = mapped_column(ForeignKey("guidance_revision.id", ondelete="CASCADE"))
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversation.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(CHANNEL_LENGTH))
    helpful: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class UnansweredReason(enum.StrEnum):
    """Why the assistant could not answer a message."""

    OUT_OF_SCOPE = "out_of_scope"
    MISUNDERSTOOD = "misunderstood"


class UnansweredQuestion(Base):
    """A citizen's message the assistant fell back on, for admins to learn from.

    ``resolution`` says what an admin did with it (an article's example
    question, a new article, or dismissed); unresolved ones are grouped in
    the admin.
    """

    __tablename__ = "unanswered_question"
    __table_args__ = (
        Index("ix_unanswered_question_resolved_at_created_at", "resolved_at", "created_at"),
        # The insight dashboard counts questions asked in a date range.
        Index(
            "ix_unanswered_question_insight",
            "created_at",
            "reason",
            "channel",
            "country",
            "conversation_id",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("message.id", ondelete="CASCADE"), unique=True
    )
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversation.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(CHANNEL_LENGTH))
    country: Mapped[str | None] = mapped_column(String(COUNTRY_LENGTH))
    reason: Mapped[UnansweredReason] = mapped_column(_enum(UnansweredReason, "unanswered_reason"))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_by: Mapped[str | None] = mapped_column(String(ACTOR_LENGTH))
    resolution: Mapped[str | None] = mapped_column(String(ACTION_LENGTH))


class TravelAdvice(Base):
    """The FCDO's travel advice summary for one country."""

    __tablename__ = "travel_advice"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    country: Mapped[str] = mapped_column(String(COUNTRY_LENGTH), unique=True)
    summary: Mapped[str] = mapped_column(Text)
    advise_against: Mapped[AdviseAgainst] = mapped_column(
        _enum(AdviseAgainst, "advise_against", length=32), default=AdviseAgainst.NONE
    )
    advise_against_areas: Mapped[str] = mapped_column(Text, default="")
    last_updated: Mapped[date] = mapped_column(Date)
    url: Mapped[str] = mapped_column(String(URL_LENGTH))
    is_sample: Mapped[bool] = mapped_column(Boolean, default=False)


class Case(Base):
    """An open consular case; identity facts are kept only as keyed hashes."""

    __tablename__ = "consular_case"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    reference: Mapped[str] = mapped_column(String(REFERENCE_LENGTH), unique=True)
    case_type: Mapped[str] = mapped_column(String(TOPIC_LENGTH))
    status: Mapped[str] = mapped_column(String(ACTOR_LENGTH))
    next_step: Mapped[str] = mapped_column(Text)
    post_id: Mapped[int | None] = mapped_column(ForeignKey("post.id", ondelete="SET NULL"))
    surname_hash: Mapped[str] = mapped_column(String(HASH_LENGTH))
    date_of_birth_hash: Mapped[str] = mapped_column(String(HASH_LENGTH))
    is_sample: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )

    timeline: Mapped[list[CaseEvent]] = relationship(back_populates="case", order_by="CaseEvent.id")


class CaseEvent(Base):
    """One dated entry in a case's timeline."""

    __tablename__ = "case_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(
        ForeignKey("consular_case.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    text: Mapped[str] = mapped_column(Text)

    case: Mapped[Case] = relationship(back_populates="timeline")


class CaseLookupLock(Base):
    """Failed identity checks per reference, whether or not the reference exists.

    Keyed by a hash of the normalised reference so that locking behaves the
    same for real and invented references: nothing reveals which exist.
    """

    __tablename__ = "case_lookup_lock"

    reference_hash: Mapped[str] = mapped_column(String(HASH_LENGTH), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    first_failure_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AuditEvent(Base):
    """Who did what, when: officer and admin actions and security events."""

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_event_action_at", "action", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    actor: Mapped[str] = mapped_column(String(ACTOR_LENGTH))
    action: Mapped[str] = mapped_column(String(ACTION_LENGTH))
    subject: Mapped[str] = mapped_column(String(ACTOR_LENGTH), default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ConsoleSession(Base):
    """A console sign-in, kept server-side; the cookie holds only a signed random key.

    ``pending`` between the password and the code (whether the password was
    right is known only here, so the form never tells), then ``active`` until
    it is signed out or expires (idle and absolute limits from the settings).
    """

    __tablename__ = "console_session"

    # SHA-256 of the random key in the cookie: a copy of this table opens nothing.
    id: Mapped[str] = mapped_column(String(HASH_LENGTH), primary_key=True)
    stage: Mapped[str] = mapped_column(String(STATUS_LENGTH))
    officer_id: Mapped[int | None] = mapped_column(
        ForeignKey("officer.id", ondelete="CASCADE"), index=True
    )
    password_ok: Mapped[bool] = mapped_column(Boolean, default=False)
    # The address typed at the first step, to count a failed second step against it.
    signin_email: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    # The synchronizer token every console form must carry.
    csrf_token: Mapped[str] = mapped_column(String(HASH_LENGTH))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    officer: Mapped[Officer | None] = relationship()
