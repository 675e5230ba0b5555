"""Messages the assistant could not answer are kept for the guidance admin, and only those.

Each test runs whole turns through the conversation service against the fake
Rasa, as every channel does.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.conversations import store
from bot.conversations.service import AttachmentIn, ConversationService
from bot.db.models import Message, UnansweredQuestion, UnansweredReason
from bot.db.session import session_scope
from tests.app.conversations.test_service import run
from tests.support.fake_rasa import FakeRasa

NOT_UNDERSTOOD = "Sorry, I can help with lost passports, emergencies and travel advice."
CHAT = "4242"
_ids = itertools.count(1)


def responder(sender: str, text: str) -> list[dict[str, Any]]:
    """Spain is understood; "joke" is out of scope; anything else is not understood.

    Payloads and "Spain" get the Spanish embassy, "arrested" an urgent answer.
    """
    lowered = text.lower()
    if text.startswith("/") or "spain" in lowered:
        custom = {"text": "British Embassy Madrid", "topic": "contact-embassy", "country": "ES"}
    elif "arrested" in lowered:
        custom = {
            "text": "Call the 24-hour line.",
            "topic": "arrest-detention",
            "urgent": True,
            "handoff": True,
        }
    elif "joke" in lowered:
        custom = {"text": NOT_UNDERSTOOD, "topic": "out-of-scope", "unanswered": "out_of_scope"}
    else:
        custom = {"text": NOT_UNDERSTOOD, "topic": "out-of-scope", "unanswered": "misunderstood"}
    return [{"recipient_id": sender, "custom": custom}]


def turns(
    fake_rasa: FakeRasa,
    factory: sessionmaker[Session],
    messages: Sequence[dict[str, Any]],
    *,
    channel: str = "telegram",
) -> None:
    """Each message as one turn of one citizen's conversation on ``channel``."""

    async def body(service: ConversationService) -> None:
        for message in messages:
            accepted = await service.accept(
                channel=channel, external_id=CHAT, provider_id=f"update:{next(_ids)}", **message
            )
            await service.process(accepted.conversation_id, accepted.message_id)

    fake_rasa.responder = responder
    run(fake_rasa, factory, body)


def kept(factory: sessionmaker[Session]) -> list[tuple[str, UnansweredReason, str, str | None]]:
    with factory() as session:
        return [
            (row.text, row.reason, row.channel, row.country)
            for row in session.scalars(select(UnansweredQuestion).order_by(UnansweredQuestion.id))
        ]


def test_out_of_scope_and_misunderstood_messages_are_kept_with_their_reason(
    fake_rasa: FakeRasa, session_factory: sessionmaker[Session]
) -> None:
    turns(
        fake_rasa,
        session_factory,
        [
            {"text": "embassy in spain"},
            {"text": "tell me a joke"},
            {"text": "wibble flarp"},
        ],
    )
    assert kept(session_factory) == [
        ("tell me a joke", UnansweredReason.OUT_OF_SCOPE, "telegram", "ES"),
        ("wibble flarp", UnansweredReason.MISUNDERSTOOD, "telegram", "ES"),
    ]
    with session_factory() as session:
        row = session.scalars(select(UnansweredQuestion).limit(1)).one()
        message = session.get_one(Message, row.message_id)
        assert (message.text, message.conversation_id) == ("tell me a joke", row.conversation_id)
        assert row.resolved_at is None


def test_an_out_of_scope_reply_without_a_marker_counts_as_out_of_scope(
    fake_rasa: FakeRasa, session_factory: sessionmaker[Session]
) -> None:
    # An action server from before the marker: the topic alone says it.
    def older(sender: str, text: str) -> list[dict[str, Any]]:
        return [{"recipient_id": sender, "custom": {"text": "No", "topic": "out-of-scope"}}]

    async def body(service: ConversationService) -> None:
        accepted = await service.accept(
            channel="sms", external_id="+447700900123", text="book me a flight", provider_id="S1"
        )
        await service.process(accepted.conversation_id, accepted.message_id)

    fake_rasa.responder = older
    run(fake_rasa, session_factory, body)
    assert kept(session_factory) == [
        ("book me a flight", UnansweredReason.OUT_OF_SCOPE, "sms", None)
    ]


@pytest.mark.parametrize(
    "message",
    [
        # A pressed button or a numbered choice: the assistant read a payload.
        {"text": "Not sure", "rasa_text": '/deny{"x":"nonsense"}'},
        # A shared location, placed or not.
        {
            "text": "Shared a location (Atlantis Road)",
            "rasa_text": "Atlantis Road",
            "attachments": [AttachmentIn(kind="location", provider_ref="geo:30.0,-40.0")],
        },
        # A file without a caption (should a channel ever describe it to the assistant).
        {
            "text": "",
            "rasa_text": "sticker",
            "attachments": [AttachmentIn(kind="sticker", provider_ref="file-1")],
        },
        # Plain words of an answer the assistant gave.
        {"text": "embassy in spain"},
    ],
    ids=["button", "location", "attachment-only", "answered"],
)
def test_what_is_not_a_question_the_assistant_failed_is_never_kept(
    fake_rasa: FakeRasa, session_factory: sessionmaker[Session], message: dict[str, Any]
) -> None:
    def never_understood(sender: str, text: str) -> list[dict[str, Any]]:
        if "spain" in text.lower():
            return responder(sender, text)
        return responder(sender, "wibble")

    async def body(service: ConversationService) -> None:
        accepted = await service.accept(
            channel="whatsapp", external_id="whatsapp:+447700900123", provider_id="W1", **message
        )
        await service.process(accepted.conversation_id, accepted.message_id)

    fake_rasa.responder = never_understood
    run(fake_rasa, session_factory, body)
    assert len(fake_rasa.calls) == 1  # the assistant was asked, and its answer not kept
    assert kept(session_factory) == []


def test_an_urgent_turn_is_never_kept(
    fake_rasa: FakeRasa, session_factory: sessionmaker[Session]
) -> None:
    def urgent_and_confused(sender: str, text: str) -> list[dict[str, Any]]:
        return [
            *responder(sender, "arrested"),
            *responder(sender, "wibble"),
        ]

    async def body(service: ConversationService) -> None:
        accepted = await service.accept(
            channel="telegram", external_id=CHAT, text="my son was arrested", provider_id="U1"
        )
        await service.process(accepted.conversation_id, accepted.message_id)

    fake_rasa.responder = urgent_and_confused
    run(fake_rasa, session_factory, body)
    assert kept(session_factory) == []


def test_a_caption_the_assistant_could_not_answer_is_kept(
    fake_rasa: FakeRasa, session_factory: sessionmaker[Session]
) -> None:
    turns(
        fake_rasa,
        session_factory,
        [
            {
                "text": "what is this stamp",
                "attachments": [AttachmentIn(kind="photo", provider_ref="file-2")],
            }
        ],
    )
    assert [row[:2] for row in kept(session_factory)] == [
        ("what is this stamp", UnansweredReason.MISUNDERSTOOD)
    ]


def test_a_message_is_kept_once_even_if_its_turn_is_recorded_again(
    fake_rasa: FakeRasa, session_factory: sessionmaker[Session]
) -> None:
    turns(fake_rasa, session_factory, [{"text": "wibble flarp"}])
    with session_scope(session_factory) as session:
        row = session.scalars(select(UnansweredQuestion)).one()
        message = session.get_one(Message, row.message_id)
        connection = session.connection()
        conversation = store.conversation_row(
            connection=connection, conversation_id=message.conversation_id
        )
        assert conversation is not None
        again = store.record_unanswered(
            connection=connection,
            conversation=conversation,
            message_id=message.id,
            text=message.text,
            reason=UnansweredReason.OUT_OF_SCOPE,
        )
        assert again is False
    assert len(kept(session_factory)) == 1
    assert kept(session_factory)[0][1] == UnansweredReason.MISUNDERSTOOD
