"""What the console's pages show, read in one unit of work and handed to templates.

Plain frozen dataclasses, so templates never touch a database session and
every citizen text reaches Jinja2 as a string it escapes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from bot.db.models import (
    CannedReply,
    Conversation,
    GuidanceRevision,
    Handoff,
    Message,
    Officer,
    OfficerNote,
    Sender,
    utcnow,
)
from bot.geo.gazetteer import country_name
from bot.handoff import queue, rota

SENDER_LABELS = {
    Sender.CITIZEN: "Citizen",
    Sender.BOT: "Assistant",
    Sender.OFFICER: "Officer",
    Sender.SYSTEM: "System",
}
CHANNEL_LABELS = {
    "webchat": "Web chat",
    "telegram": "Telegram",
    "whatsapp": "WhatsApp",
    "sms": "SMS",
}


@dataclass(frozen=True)
class Stamp:
    """A moment shown in the officer's own time zone."""

    iso: str
    text: str


@dataclass(frozen=True)
class QueueRow:
    """One line of the queue table."""

    conversation_id: str
    urgent: bool
    topic: str
    country: str
    channel: str
    waiting: str
    queued_at: Stamp
    summary: str
    reason: str
    owner: str | None
    mine: bool


@dataclass(frozen=True)
class AttachmentView:
    """An attachment a citizen sent, listed (the provider keeps the bytes)."""

    kind: str
    filename: str | None
    content_type: str | None
    size: str | None


@dataclass(frozen=True)
class GuidanceSource:
    """The article revision a guidance answer came from, and when it is due for review.

    ``title`` and ``number`` are None when the revision is no longer stored;
    ``overdue`` says the review-by date has passed on the officer's clock, so
    the answer may be out of date.
    """

    revision_id: int
    title: str | None
    number: int | None
    review_by: Stamp | None
    overdue: bool


@dataclass(frozen=True)
class TranscriptItem:
    """One message of the transcript, the bot's turns included."""

    id: int
    sender: str
    sender_label: str
    author: str | None
    text: str
    at: Stamp
    delivery_state: str | None
    attachments: list[AttachmentView]
    guidance: GuidanceSource | None = None


@dataclass(frozen=True)
class NoteView:
    """An internal note (never shown to the citizen)."""

    author: str
    text: str
    at: Stamp


@dataclass(frozen=True)
class HandoffView:
    """The conversation's handoff: open, or the last one closed."""

    id: int
    open: bool
    urgent: bool
    reason: str
    summary: str
    queued_at: Stamp
    officer_id: int | None
    officer_name: str | None
    callback_details: str | None
    outcome: str | None


@dataclass(frozen=True)
class Colleague:
    """An officer a conversation can be transferred to."""

    id: int
    name: str
    presence: str
    on_duty: bool


@dataclass(frozen=True)
class CannedView:
    """A ready-made reply."""

    id: int
    title: str
    text: str


@dataclass(frozen=True)
class ConversationPage:
    """Everything the conversation page shows."""

    id: str
    channel: str
    topic: str
    country: str
    owner: str
    details: dict[str, str]
    handoff: HandoffView | None
    transcript: list[TranscriptItem]
    notes: list[NoteView]
    canned: list[CannedView]
    colleagues: list[Colleague]
    mine: bool
    may_act: bool


def stamp(moment: datetime, timezone: str) -> Stamp:
    """``moment`` on the officer's clock, e.g. ``3 Dec 14:05 GST``."""
    aware = _aware(moment)
    local = aware.astimezone(_zone(timezone))
    return Stamp(iso=aware.isoformat(), text=f"{local:%-d %b %H:%M %Z}")


def waiting(seconds: int) -> str:
    """A waiting time as people say it."""
    minutes = max(0, seconds) // 60
    if minutes < 1:
        return "under a minute"
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def topic_label(slug: str | None) -> str:
    """A catalogue topic slug as words (``arrest-detention``: "Arrest detention")."""
    if not slug:
        return "Not known yet"
    return slug.replace("-", " ").capitalize()


def country_label(code: str | None) -> str:
    """A country's name with its ISO code."""
    if not code:
        return "Not known yet"
    try:
        return f"{country_name(code)} ({code})"
    except (KeyError, LookupError, ValueError):
        return code


def queue_rows(session: Session, officer: Officer) -> list[QueueRow]:
    """The open queue: urgent first, then the longest waiting."""
    return [
        QueueRow(
            conversation_id=entry.conversation_id,
            urgent=entry.urgent,
            topic=topic_label(entry.topic),
            country=country_label(entry.country),
            channel=CHANNEL_LABELS.get(entry.channel, entry.channel),
            waiting=waiting(entry.waiting_seconds),
            queued_at=stamp(entry.queued_at, officer.timezone),
            summary=entry.summary,
            reason=entry.reason,
            owner=entry.officer_name,
            mine=entry.officer_id == officer.id,
        )
        for entry in queue.open_entries(session)
    ]


def conversation_page(
    session: Session, officer: Officer, conversation: Conversation
) -> ConversationPage:
    """The transcript, details, handoff, notes and what the officer can do."""
    tz = officer.timezone
    handoff = session.scalars(
        select(Handoff)
        .where(Handoff.conversation_id == conversation.id)
        .options(joinedload(Handoff.officer))
        .order_by(Handoff.closed_at.is_not(None), Handoff.id.desc())
    ).first()
    handoff_view = None
    if handoff is not None:
        handoff_view = HandoffView(
            id=handoff.id,
            open=handoff.closed_at is None,
            urgent=handoff.priority > 0,
            reason=handoff.reason,
            summary=handoff.summary,
            queued_at=stamp(handoff.queued_at, tz),
            officer_id=handoff.officer_id,
            officer_name=handoff.officer.name if handoff.officer else None,
            callback_details=handoff.callback_details,
            outcome=handoff.outcome,
        )
    authors = _officer_names(session)
    messages = queue.transcript(session, conversation.id)
    sources = guidance_sources(session, messages, tz, utcnow())
    transcript = [_item(message, tz, authors, sources.get(message.id)) for message in messages]
    notes = [
        NoteView(author=note.officer.name, text=note.text, at=stamp(note.created_at, tz))
        for note in session.scalars(
            select(OfficerNote)
            .where(OfficerNote.conversation_id == conversation.id)
            .options(joinedload(OfficerNote.officer))
            .order_by(OfficerNote.id)
        )
    ]
    canned = [
        CannedView(id=reply.id, title=reply.title, text=reply.text)
        for reply in session.scalars(select(CannedReply).order_by(CannedReply.title))
    ]
    now = utcnow()
    officers = rota.load_officers(session)
    duty = {person.id for person in rota.on_duty(officers, now)}
    colleagues = [
        Colleague(
            id=person.id,
            name=person.name,
            presence=person.presence.value,
            on_duty=person.id in duty,
        )
        for person in sorted(officers, key=lambda person: person.name)
        if person.id != officer.id
    ]
    details = {
        "Topic": topic_label(conversation.topic),
        "Country": country_label(conversation.country),
        "Channel": CHANNEL_LABELS.get(conversation.channel, conversation.channel),
    }
    mine = handoff_view is not None and handoff_view.open and handoff_view.officer_id == officer.id
    may_act = (
        handoff_view is not None and handoff_view.open and (mine or officer.role.value != "officer")
    )
    return ConversationPage(
        id=conversation.id,
        channel=CHANNEL_LABELS.get(conversation.channel, conversation.channel),
        topic=topic_label(conversation.topic),
        country=country_label(conversation.country),
        owner=conversation.owner.value,
        details=details,
        handoff=handoff_view,
        transcript=transcript,
        notes=notes,
        canned=canned,
        colleagues=colleagues,
        mine=mine,
        may_act=may_act,
    )


def transcript_item(message: Message, timezone: str, author: str | None) -> TranscriptItem:
    """One stored message as the console shows it (without its guidance source)."""
    return _item(message, timezone, {message.officer_id: author} if message.officer_id else {})


def guidance_sources(
    session: Session, messages: list[Message], timezone: str, now: datetime
) -> dict[int, GuidanceSource]:
    """Where each guidance answer among ``messages`` came from, by message id.

    One query for all the revisions. The stored revision's review-by date is
    the one shown; the date recorded with the answer stands in for a
    revision that has since been deleted.
    """
    wanted = {
        message.id: revision_id
        for message in messages
        if message.sender == Sender.BOT
        and (revision_id := _revision_id(message.payload)) is not None
    }
    if not wanted:
        return {}
    revisions = {
        revision.id: revision
        for revision in session.scalars(
            select(GuidanceRevision).where(GuidanceRevision.id.in_(set(wanted.values())))
        )
    }
    today = _aware(now).astimezone(_zone(timezone)).date()
    by_message = {message.id: message for message in messages}
    sources = {}
    for message_id, revision_id in wanted.items():
        revision = revisions.get(revision_id)
        review_by = (
            revision.review_by
            if revision is not None
            else _iso_date(by_message[message_id].payload.get("review_by"))
        )
        sources[message_id] = GuidanceSource(
            revision_id=revision_id,
            title=revision.title if revision is not None else None,
            number=revision.number if revision is not None else None,
            review_by=_day(review_by) if review_by is not None else None,
            overdue=review_by is not None and review_by < today,
        )
    return sources


def source_json(source: GuidanceSource) -> dict[str, Any]:
    """A guidance source for the console's live updates (rendered as the page does)."""
    return {
        "revision_id": source.revision_id,
        "title": source.title,
        "number": source.number,
        "review_by": source.review_by.iso if source.review_by else None,
        "review_by_text": source.review_by.text if source.review_by else None,
        "overdue": source.overdue,
    }


def _revision_id(payload: dict[str, Any] | None) -> int | None:
    raw = (payload or {}).get("revision_id")
    return raw if isinstance(raw, int) and not isinstance(raw, bool) and raw > 0 else None


def _iso_date(raw: Any) -> date | None:
    try:
        return date.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        return None


def _day(day: date) -> Stamp:
    """A calendar date as people write it: ``3 March 2027``."""
    return Stamp(iso=day.isoformat(), text=f"{day.day} {day:%B %Y}")


def _item(
    message: Message,
    tz: str,
    authors: dict[int | None, str | None],
    guidance: GuidanceSource | None = None,
) -> TranscriptItem:
    outbound = message.sender != Sender.CITIZEN
    return TranscriptItem(
        id=message.id,
        sender=message.sender.value,
        sender_label=SENDER_LABELS.get(message.sender, message.sender.value),
        author=authors.get(message.officer_id) if message.officer_id else None,
        text=message.text,
        at=stamp(message.created_at, tz),
        delivery_state=message.delivery_state.value if outbound else None,
        attachments=[
            AttachmentView(
                kind=attachment.kind,
                filename=attachment.filename,
                content_type=attachment.content_type,
                size=_size(attachment.size_bytes),
            )
            for attachment in message.attachments
        ],
        guidance=guidance,
    )


def _officer_names(session: Session) -> dict[int | None, str | None]:
    return {row.id: row.name for row in session.execute(select(Officer.id, Officer.name))}


def _size(size: int | None) -> str | None:
    if size is None:
        return None
    if size < 1024:
        return f"{size} bytes"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def _zone(timezone: str) -> ZoneInfo:
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=utcnow().tzinfo)
