"""The bot's replies: parsed from Rasa's REST output, shown as the public Reply shape."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from bot.db.models import Message
from bot.guidance.render import to_html

MAX_BUTTONS = 10
# Why the assistant could not answer, as actions mark it (UnansweredReason values).
UNANSWERED_REASONS = frozenset({"out_of_scope", "misunderstood"})


@dataclass(frozen=True)
class BotReply:
    """One reply, before it is stored."""

    text: str
    topic: str | None = None
    country: str | None = None
    urgent: bool = False
    handoff: bool = False
    buttons: list[dict[str, str]] = field(default_factory=list)
    # Guidance answers also carry their Markdown, rendered to HTML for web chat.
    markdown: str | None = None
    handoff_reason: str | None = None
    # The guidance revision an answer came from, and its review-by date (ISO).
    revision_id: int | None = None
    review_by: str | None = None
    # Set when the assistant could not answer ("out_of_scope", "misunderstood").
    unanswered: str | None = None

    def payload(self) -> dict[str, Any]:
        """The metadata stored on the Message beside its text.

        A guidance answer keeps its revision, so "Was this helpful?" is asked
        about it and officers see which revision it was and when it is due
        for review.
        """
        payload: dict[str, Any] = {
            "buttons": self.buttons,
            "topic": self.topic,
            "country": self.country,
            "urgent": self.urgent,
            "handoff": self.handoff,
        }
        if self.markdown:
            payload["markdown"] = self.markdown
        if self.revision_id is not None:
            payload["revision_id"] = self.revision_id
            payload["review_by"] = self.review_by
        return payload


def _buttons(raw: Any) -> list[dict[str, str]]:
    if not isinstance(raw, list):
        return []
    buttons = []
    for item in raw[:MAX_BUTTONS]:
        if isinstance(item, dict) and item.get("title") and item.get("payload"):
            buttons.append({"title": str(item["title"]), "payload": str(item["payload"])})
    return buttons


def _optional_text(raw: Any) -> str | None:
    return raw if isinstance(raw, str) and raw.strip() else None


def _revision_id(raw: Any) -> int | None:
    # bool is an int in Python: true must not become revision 1.
    if isinstance(raw, int) and not isinstance(raw, bool) and raw > 0:
        return raw
    return None


def _iso_date(raw: Any) -> str | None:
    if not isinstance(raw, str):
        return None
    try:
        return date.fromisoformat(raw).isoformat()
    except ValueError:
        return None


def _unanswered(raw: Any) -> str | None:
    return raw if isinstance(raw, str) and raw in UNANSWERED_REASONS else None


def _country(raw: Any) -> str | None:
    if isinstance(raw, str) and len(raw) == 2 and raw.isalpha():
        return raw.upper()
    return None


def parse_rasa_output(items: Any) -> list[BotReply]:
    """Maps Rasa's REST channel messages onto replies.

    Actions send metadata as a ``custom`` payload holding the whole reply;
    plain ``text`` messages (small talk) carry no topic.
    """
    if not isinstance(items, list):
        raise ValueError(f"Rasa returned {type(items).__name__}, not a list")
    replies = []
    for item in items:
        if not isinstance(item, dict):
            continue
        custom = item.get("custom")
        if isinstance(custom, dict) and isinstance(custom.get("text"), str):
            replies.append(
                BotReply(
                    text=custom["text"],
                    topic=custom.get("topic") if isinstance(custom.get("topic"), str) else None,
                    country=_country(custom.get("country")),
                    urgent=bool(custom.get("urgent", False)),
                    handoff=bool(custom.get("handoff", False)),
                    buttons=_buttons(custom.get("buttons")),
                    markdown=_optional_text(custom.get("markdown")),
                    handoff_reason=_optional_text(custom.get("handoff_reason")),
                    revision_id=_revision_id(custom.get("revision_id")),
                    review_by=_iso_date(custom.get("review_by")),
                    unanswered=_unanswered(custom.get("unanswered")),
                )
            )
        elif isinstance(item.get("text"), str):
            replies.append(BotReply(text=item["text"], buttons=_buttons(item.get("buttons"))))
    return replies


def reply_json(message: Message) -> dict[str, Any]:
    """A stored outbound message as the public ``Reply`` object.

    ``html`` (sanitised, or null) is an addition for web chat: the rich form
    of a guidance answer whose plain form is ``text``.
    """
    payload = message.payload or {}
    markdown = payload.get("markdown")
    return {
        "id": message.id,
        "text": message.text,
        "buttons": payload.get("buttons", []),
        "topic": payload.get("topic"),
        "country": payload.get("country"),
        "urgent": bool(payload.get("urgent", False)),
        "handoff": bool(payload.get("handoff", False)),
        "sender": message.sender.value,
        "html": to_html(markdown) if isinstance(markdown, str) else None,
    }


def transcript_json(message: Message) -> dict[str, Any]:
    """Any stored message (the citizen's too) as a transcript item."""
    item = reply_json(message)
    item["created_at"] = message.created_at.isoformat()
    return item
