"""What a citizen is told when they join the officers' queue, and callback capture."""

from __future__ import annotations

import re

from sqlalchemy.orm import Session

from bot.db.models import Conversation, Handoff, utcnow
from bot.handoff import queue, rota

# A phone number as people type it: +, digits, spaces, dots, dashes, brackets.
PHONE = re.compile(r"(?:\+|00)?\d[\d\s().-]{6,}\d")
CALLBACK_LENGTH = 500


def queue_notice(*, session: Session, conversation: Conversation, emergency_phone: str) -> str:
    """Place in the queue and expected wait, or an honest "nobody is online"."""
    now = utcnow()
    online = rota.available(rota.load_officers(session), now)
    if not online:
        return (
            "No duty officer is online at this moment. If you are in danger or need "
            f"urgent help, call the 24-hour consular line on {emergency_phone}. "
            "If you would like an officer to call you back, send the phone number "
            "to call (with its country code) and a good time to call; your messages "
            "here are kept for the next officer on duty."
        )
    place = queue.position(session, conversation.id) or 1
    minutes = queue.expected_wait_minutes(place, len(online))
    ahead = "You are next in the queue" if place == 1 else f"You are number {place} in the queue"
    return (
        f"{ahead}; the expected wait is about {minutes} minute"
        f"{'s' if minutes != 1 else ''}. A consular officer will join this conversation. "
        f"In an emergency, call the 24-hour consular line on {emergency_phone}."
    )


def capture_callback(*, handoff: Handoff, text: str) -> bool:
    """Keeps a callback number the citizen sent while waiting; True when one was found."""
    if handoff.officer_id is not None or not PHONE.search(text):
        return False
    stamped = f"{utcnow():%Y-%m-%d %H:%M} UTC: {text.strip()}"
    previous = handoff.callback_details
    combined = f"{previous}\n{stamped}" if previous else stamped
    handoff.callback_details = combined[-CALLBACK_LENGTH:]
    return True
