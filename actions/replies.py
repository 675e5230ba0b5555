"""Reply payloads in the app's shape, and the holding reply used on failures.

Every reply that carries service metadata is sent as a custom payload; the app
turns each one into a single Reply of the web chat API (ARCHITECTURE.md).
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional

EMERGENCY_PHONE = os.environ.get("CONSULAR_EMERGENCY_PHONE", "+44 20 7008 5000")


def reply(
    text: str,
    *,
    topic: Optional[str],
    country: Optional[str] = None,
    urgent: bool = False,
    handoff: bool = False,
    buttons: Optional[List[Dict[str, str]]] = None,
) -> Dict[str, Any]:
    """A custom payload the app maps one-to-one onto a Reply."""
    return {
        "text": text,
        "topic": topic,
        "country": country,
        "urgent": urgent,
        "handoff": handoff,
        "buttons": buttons or [],
    }


def holding_reply(*, topic: Optional[str], country: Optional[str] = None) -> Dict[str, Any]:
    """Said when the service behind an answer is unavailable: queue for an officer."""
    return reply(
        "Sorry, I can't look that up right now. I've passed your conversation to our "
        "consular team and an officer will reply here. If you need urgent help, call "
        f"the 24-hour consular line on {EMERGENCY_PHONE}.",
        topic=topic,
        country=country,
        handoff=True,
    )


def ask_country_reply(topic: str) -> Dict[str, Any]:
    """The question for a missing country; the topic tells the app what it is for."""
    if topic == "contact-embassy":
        question = (
            "Which country are you in, or which country do you need the British embassy "
            "or consulate for?"
        )
    else:
        question = "Which country is this about?"
    return reply(question, topic=topic)
