"""What an officer can do to a queued conversation; each step is audited.

These are units of work on one session; the console's request handlers call
them in a worker thread and publish the results. Take-over is one UPDATE
guarded by "nobody owns it yet", so two officers clicking at once cannot
both own a conversation, on SQLite or PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from bot import audit
from bot.conversations import store
from bot.conversations.replies import BotReply
from bot.conversations.service import PULL_CHANNELS
from bot.db.models import (
    Conversation,
    DeliveryState,
    Handoff,
    Message,
    Officer,
    OfficerNote,
    OfficerRole,
    Owner,
    Sender,
    utcnow,
)
from bot.outbox import store as outbox

OUTCOMES = {
    "resolved": "Resolved: the citizen has what they needed",
    "referred-to-post": "Referred to the post for follow-up",
    "case-opened": "A consular case was opened",
    "emergency-services": "Passed to local emergency services",
    "no-response": "The citizen stopped responding",
    "out-of-scope": "Not something we can help with",
    "duplicate": "Duplicate of another conversation",
}
OUTCOME_RETURNED = "returned-to-bot"
MAX_REPLY_LENGTH = 4000
RETURN_GREETING = (
    "You are back with the consular assistant. The officer has handed your "
    "conversation back; ask me anything else, or ask for an officer again at any time."
)


class HandoffError(Exception):
    """An officer action that cannot be done; the message says why, for the officer."""


class AlreadyTaken(HandoffError):
    """Another officer took the conversation first."""


class NotYours(HandoffError):
    """Only the officer who owns the conversation (or a supervisor) may do this."""


def view(*, session: Session, officer: Officer, conversation_id: str) -> Conversation:
    """Opens a conversation (an audited read)."""
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        raise HandoffError("There is no such conversation.")
    audit.record(
        session=session, actor=_actor(officer), action="conversation.view", subject=conversation_id
    )
    return conversation


def take_over(*, session: Session, officer: Officer, handoff_id: int) -> Handoff:
    """Makes ``officer`` the only owner of the conversation, or raises AlreadyTaken."""
    now = utcnow()
    taken = session.execute(
        update(Handoff)
        .where(
            Handoff.id == handoff_id,
            Handoff.officer_id.is_(None),
            Handoff.closed_at.is_(None),
        )
        .values(officer_id=officer.id, assigned_at=now)
        .execution_options(synchronize_session=False)
    )
    handoff = session.get(Handoff, handoff_id)
    if handoff is None:
        raise HandoffError("There is no such conversation in the queue.")
    session.refresh(handoff)
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        if handoff.closed_at is not None:
            raise HandoffError("This conversation has been closed.")
        owner = handoff.officer.name if handoff.officer else "another officer"
        raise AlreadyTaken(f"{owner} has already taken this conversation.")
    handoff.conversation.owner = Owner.OFFICER
    audit.record(
        session=session,
        actor=_actor(officer),
        action="handoff.take_over",
        subject=handoff.conversation_id,
        details={"handoff": handoff.id, "waited_seconds": _seconds(handoff)},
    )
    return handoff


def announce(*, session: Session, officer: Officer, handoff: Handoff, joined: bool) -> Message:
    """Tells the citizen that an officer has joined (or taken over from a colleague)."""
    first_name = officer.name.split()[0] if officer.name.strip() else "a colleague"
    text = (
        f"A consular officer, {first_name}, has joined this conversation and will reply here."
        if joined
        else f"Your conversation has been passed to another consular officer, {first_name}, "
        "who will reply here."
    )
    return _send(session, handoff.conversation, BotReply(text=text), Sender.SYSTEM)


def reply(*, session: Session, officer: Officer, handoff_id: int, text: str) -> Message:
    """Sends the officer's words to the citizen's channel (through the outbox)."""
    text = text.strip()
    if not text:
        raise HandoffError("Enter a reply.")
    if len(text) > MAX_REPLY_LENGTH:
        raise HandoffError(f"Replies can be at most {MAX_REPLY_LENGTH} characters.")
    handoff = _owned(session, officer, handoff_id)
    message = _send(session, handoff.conversation, BotReply(text=text), Sender.OFFICER)
    message.officer_id = officer.id
    if handoff.first_reply_at is None:
        handoff.first_reply_at = utcnow()
    audit.record(
        session=session,
        actor=_actor(officer),
        action="handoff.reply",
        subject=handoff.conversation_id,
        details={"handoff": handoff.id, "message": message.id},
    )
    return message


def add_note(*, session: Session, officer: Officer, conversation_id: str, text: str) -> OfficerNote:
    """An internal note for colleagues; never sent to the citizen."""
    text = text.strip()
    if not text:
        raise HandoffError("Enter a note.")
    if session.get(Conversation, conversation_id) is None:
        raise HandoffError("There is no such conversation.")
    note = OfficerNote(conversation_id=conversation_id, officer_id=officer.id, text=text)
    session.add(note)
    session.flush()
    audit.record(
        session=session,
        actor=_actor(officer),
        action="conversation.note",
        subject=conversation_id,
        details={"note": note.id},
    )
    return note


def transfer(*, session: Session, officer: Officer, handoff_id: int, to: Officer) -> Handoff:
    """Hands the conversation to a colleague."""
    handoff = _owned(session, officer, handoff_id)
    if not to.active:
        raise HandoffError(f"{to.name} cannot take conversations.")
    if to.id == handoff.officer_id:
        raise HandoffError(f"{to.name} already owns this conversation.")
    handoff.officer_id = to.id
    handoff.assigned_at = utcnow()
    audit.record(
        session=session,
        actor=_actor(officer),
        action="handoff.transfer",
        subject=handoff.conversation_id,
        details={"handoff": handoff.id, "to": to.email},
    )
    return handoff


def return_to_bot(*, session: Session, officer: Officer, handoff_id: int) -> Message:
    """Gives the conversation back to the assistant, which greets the citizen back.

    Rasa keeps its own state for the conversation (topic, country), so the
    assistant resumes with what it knew.
    """
    handoff = _owned(session, officer, handoff_id)
    store.close_handoff(session=session, handoff=handoff, outcome=OUTCOME_RETURNED)
    greeting = _send(session, handoff.conversation, BotReply(text=RETURN_GREETING), Sender.BOT)
    audit.record(
        session=session,
        actor=_actor(officer),
        action="handoff.return_to_bot",
        subject=handoff.conversation_id,
        details={"handoff": handoff.id},
    )
    return greeting


def close(*, session: Session, officer: Officer, handoff_id: int, outcome: str) -> Handoff:
    """Closes the handoff with an outcome code; the assistant answers any later message."""
    if outcome not in OUTCOMES:
        raise HandoffError("Choose an outcome.")
    handoff = _owned(session, officer, handoff_id)
    store.close_handoff(session=session, handoff=handoff, outcome=outcome)
    audit.record(
        session=session,
        actor=_actor(officer),
        action="handoff.close",
        subject=handoff.conversation_id,
        details={"handoff": handoff.id, "outcome": outcome},
    )
    return handoff


def _owned(session: Session, officer: Officer, handoff_id: int) -> Handoff:
    handoff = session.get(Handoff, handoff_id)
    if handoff is None:
        raise HandoffError("There is no such conversation in the queue.")
    if handoff.closed_at is not None:
        raise HandoffError("This conversation has been closed.")
    if handoff.officer_id != officer.id and officer.role == OfficerRole.OFFICER:
        raise NotYours("Take over the conversation first.")
    return handoff


def _send(session: Session, conversation: Conversation, reply: BotReply, sender: Sender) -> Message:
    message = store.store_outbound(
        session=session, conversation_id=conversation.id, reply=reply, sender=sender
    )
    if conversation.channel not in PULL_CHANNELS:
        outbox.enqueue(
            session=session,
            message=message,
            channel=conversation.channel,
            recipient=conversation.external_id,
        )
    else:
        message.delivery_state = DeliveryState.DELIVERED
    return message


def _actor(officer: Officer) -> str:
    return f"officer:{officer.email}"


def _seconds(handoff: Handoff) -> int:
    if handoff.assigned_at is None:
        return 0
    queued = handoff.queued_at
    assigned = handoff.assigned_at
    if queued.tzinfo is None:
        queued = queued.replace(tzinfo=assigned.tzinfo)
    if assigned.tzinfo is None:
        assigned = assigned.replace(tzinfo=queued.tzinfo)
    return int((assigned - queued).total_seconds())
