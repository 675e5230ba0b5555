"""The officers' queue: order, position, expected wait, and what each entry shows."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from bot.db.models import Conversation, Handoff, Message, utcnow

# Without history, how long an officer spends on one citizen before the next.
DEFAULT_MINUTES_PER_CITIZEN = 6


@dataclass(frozen=True)
class QueueEntry:
    """One waiting (or taken) conversation, as the console lists it."""

    handoff_id: int
    conversation_id: str
    reason: str
    urgent: bool
    topic: str | None
    country: str | None
    channel: str
    summary: str
    queued_at: datetime
    officer_id: int | None
    officer_name: str | None
    waiting_seconds: int


def open_entries(session: Session, *, include_taken: bool = True) -> list[QueueEntry]:
    """Open handoffs: urgent first, then the longest waiting."""
    query = (
        select(Handoff)
        .where(Handoff.closed_at.is_(None))
        .options(joinedload(Handoff.conversation), joinedload(Handoff.officer))
        .order_by(Handoff.priority.desc(), Handoff.queued_at, Handoff.id)
    )
    if not include_taken:
        query = query.where(Handoff.officer_id.is_(None))
    now = utcnow()
    entries = []
    for handoff in session.scalars(query).unique():
        conversation = handoff.conversation
        entries.append(
            QueueEntry(
                handoff_id=handoff.id,
                conversation_id=conversation.id,
                reason=handoff.reason,
                urgent=handoff.priority > 0,
                topic=handoff.topic or conversation.topic,
                country=handoff.country or conversation.country,
                channel=conversation.channel,
                summary=handoff.summary,
                queued_at=handoff.queued_at,
                officer_id=handoff.officer_id,
                officer_name=handoff.officer.name if handoff.officer else None,
                waiting_seconds=int((now - _aware(handoff.queued_at, now)).total_seconds()),
            )
        )
    return entries


def position(session: Session, conversation_id: str) -> int | None:
    """The conversation's place among those nobody has taken yet (1 is next)."""
    waiting = open_entries(session, include_taken=False)
    for index, entry in enumerate(waiting, start=1):
        if entry.conversation_id == conversation_id:
            return index
    return None


def expected_wait_minutes(place: int, officers_available: int) -> int:
    """A plain estimate: the citizens ahead shared among the officers online."""
    if officers_available <= 0:
        officers_available = 1
    return max(1, math.ceil(place * DEFAULT_MINUTES_PER_CITIZEN / officers_available))


def transcript(session: Session, conversation_id: str) -> list[Message]:
    """Every message of the conversation, the bot's turns included, oldest first."""
    return list(
        session.scalars(
            select(Message)
            .where(Message.conversation_id == conversation_id)
            .options(joinedload(Message.attachments))
            .order_by(Message.id)
        ).unique()
    )


def collected_details(conversation: Conversation) -> dict[str, str]:
    """What the assistant already knows (no identity facts: those are never kept)."""
    details = {}
    if conversation.topic:
        details["topic"] = conversation.topic
    if conversation.country:
        details["country"] = conversation.country
    details["channel"] = conversation.channel
    return details


def _aware(moment: datetime, now: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=now.tzinfo)
