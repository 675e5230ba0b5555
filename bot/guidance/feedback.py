"""'Was this helpful?' after a guidance answer: the question, its buttons, the answers.

After a turn that gave a guidance answer the conversation asks one short
question with two buttons, Yes and No. Their payloads name the revision the
answer came from::

    /feedback{"revision_id":12,"helpful":true}

A press never reaches the assistant: :class:`~bot.conversations.service.ConversationService`
recognises an offered payload, records the answer here (one row per
conversation and revision; pressing again changes it) and thanks the
citizen. Payloads are parsed strictly and count only when the question was
really sent in that conversation, so a citizen who types the payload gets
no further than anyone typing words.

Every channel shows the same stored buttons: web chat as buttons, Telegram as
an inline keyboard (its callback data names the message and the button, never
the payload), WhatsApp as a quick-reply template when one is configured, and
WhatsApp without one and SMS as numbered options.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.conversations.replies import BotReply
from bot.db.models import (
    Conversation,
    Direction,
    GuidanceFeedback,
    GuidanceRevision,
    Message,
    Sender,
    utcnow,
)

QUESTION = "Was this helpful?"
YES = "Yes"
NO = "No"
INTENT = "/feedback"
# Exactly what feedback_payload writes: compact JSON with the two keys in order.
_PAYLOAD = re.compile(r'/feedback\{"revision_id":([1-9][0-9]{0,17}),"helpful":(true|false)\}')
THANKS = "Thank you for your feedback."
THANKS_NOT_HELPFUL = (
    "Thank you for telling us. We use this to improve our answers. You can ask your "
    'question again in other words, or type "talk to an officer" to reach the consular team.'
)


@dataclass(frozen=True)
class Choice:
    """A pressed Yes or No, for one revision."""

    revision_id: int
    helpful: bool


def feedback_payload(revision_id: int, helpful: bool) -> str:
    """The payload of the Yes or No button for a revision (short: well under any limit)."""
    body = json.dumps({"revision_id": revision_id, "helpful": helpful}, separators=(",", ":"))
    return f"{INTENT}{body}"


def parse_payload(text: str | None) -> Choice | None:
    """The choice a payload makes, or None for anything that is not exactly one of ours."""
    if not isinstance(text, str):
        return None
    match = _PAYLOAD.fullmatch(text)
    if match is None:
        return None
    return Choice(revision_id=int(match.group(1)), helpful=match.group(2) == "true")


def is_feedback_payload(text: str | None) -> bool:
    """Whether text is (or pretends to be) a feedback payload: never read as typed words."""
    return isinstance(text, str) and text.strip().startswith(INTENT)


def question(revision_id: int) -> BotReply:
    """The question asked after a guidance answer from ``revision_id``."""
    return BotReply(
        text=QUESTION,
        buttons=[
            {"title": YES, "payload": feedback_payload(revision_id, True)},
            {"title": NO, "payload": feedback_payload(revision_id, False)},
        ],
    )


def is_question(buttons: Sequence[Mapping[str, Any]]) -> bool:
    """Whether a message's buttons are those of the feedback question (for senders)."""
    return len(buttons) == 2 and all(
        parse_payload(button.get("payload")) is not None for button in buttons
    )


def revision_to_ask_about(replies: Sequence[BotReply]) -> int | None:
    """The revision a turn's guidance answer came from, if the turn should ask about it.

    Not after an urgent turn or one that hands over to an officer: the
    citizen needs a person then, not a survey.
    """
    if any(reply.urgent or reply.handoff for reply in replies):
        return None
    answers = [reply.revision_id for reply in replies if reply.revision_id is not None]
    return answers[-1] if answers else None


_ANSWER = select(GuidanceFeedback.id).where(
    GuidanceFeedback.conversation_id == bindparam("conversation_id"),
    GuidanceFeedback.revision_id == bindparam("revision_id"),
)


def already_answered(*, session: Session, conversation_id: str, revision_id: int) -> bool:
    """Whether this conversation has already said whether this revision helped.

    Read on the session's connection, without flushing it or loading
    anything into it: only the answers are read, on every guidance answer.
    """
    found = session.connection().scalar(
        _ANSWER, {"conversation_id": conversation_id, "revision_id": revision_id}
    )
    return found is not None


def was_offered(*, session: Session, conversation_id: str, payload: str) -> bool:
    """Whether a button with exactly this payload was sent in this conversation.

    Channels already check the press against what they showed; this holds
    the line for every channel in one place.
    """
    offered = session.scalars(
        select(Message.payload).where(
            Message.conversation_id == conversation_id,
            Message.direction == Direction.OUTBOUND,
            Message.sender == Sender.SYSTEM,
            Message.text == QUESTION,
        )
    )
    return any(
        isinstance(button, dict) and button.get("payload") == payload
        for stored in offered
        for button in (stored or {}).get("buttons", [])
    )


def record(
    *, session: Session, conversation: Conversation, choice: Choice
) -> GuidanceFeedback | None:
    """Stores the answer (or changes an earlier one); None if the revision no longer exists."""
    revision = session.get(GuidanceRevision, choice.revision_id)
    if revision is None:
        return None
    existing = _existing(session, conversation.id, revision.id)
    if existing is None:
        row = GuidanceFeedback(
            article_id=revision.article_id,
            revision_id=revision.id,
            conversation_id=conversation.id,
            channel=conversation.channel,
            helpful=choice.helpful,
        )
        try:
            with session.begin_nested():
                session.add(row)
            return row
        except IntegrityError:
            # The same conversation answered at the same moment elsewhere.
            existing = _existing(session, conversation.id, revision.id)
            assert existing is not None
    existing.helpful = choice.helpful
    existing.created_at = utcnow()
    session.flush()
    return existing


def thanks(choice: Choice) -> str:
    """What the citizen is told after pressing Yes or No."""
    return THANKS if choice.helpful else THANKS_NOT_HELPFUL


def _existing(session: Session, conversation_id: str, revision_id: int) -> GuidanceFeedback | None:
    return session.scalars(
        select(GuidanceFeedback).where(
            GuidanceFeedback.conversation_id == conversation_id,
            GuidanceFeedback.revision_id == revision_id,
        )
    ).one_or_none()
