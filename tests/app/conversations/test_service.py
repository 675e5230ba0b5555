"""The channel-free message path: push channels, recovery after a crash or an outage."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

import httpx
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from bot.conversations.events import EventHub
from bot.conversations.rasa_client import RasaClient
from bot.conversations.service import AttachmentIn, ConversationService
from bot.db.models import (
    Attachment,
    Conversation,
    DeliveryState,
    Direction,
    Handoff,
    Message,
    OutboxItem,
    Owner,
    utcnow,
)
from tests.support.fake_rasa import FakeRasa

T = TypeVar("T")


def run(
    fake_rasa: FakeRasa,
    factory: sessionmaker[Session],
    body: Callable[[ConversationService], Awaitable[T]],
) -> tuple[T, int]:
    """Runs ``body`` with a service talking to the fake Rasa; returns its result and wakes."""
    wakes = 0

    def woken() -> None:
        nonlocal wakes
        wakes += 1

    async def main() -> T:
        async with httpx.AsyncClient() as http:
            rasa = RasaClient(
                http=http,
                base_url=fake_rasa.url,  # type: ignore[attr-defined]
                token=fake_rasa.token,
                timeout=5,
            )
            service = ConversationService(
                session_factory=factory,
                rasa=rasa,
                hub=EventHub(),
                emergency_phone="+44 20 7008 5000",
                on_queued=woken,
                stale_turn_seconds=0,
            )
            try:
                result = await body(service)
                await service.drain()
            finally:
                await rasa.aclose()
            return result

    return asyncio.run(main()), wakes


def inbound_states(factory: sessionmaker[Session]) -> list[tuple[str, DeliveryState]]:
    with factory() as session:
        return [
            (m.text, m.delivery_state)
            for m in session.scalars(
                select(Message).where(Message.direction == Direction.INBOUND).order_by(Message.id)
            )
        ]


def test_a_push_channel_reply_is_queued_in_the_outbox(
    fake_rasa: FakeRasa, session_factory: sessionmaker[Session]
) -> None:
    async def body(service: ConversationService) -> list[dict[str, Any]]:
        accepted = await service.accept(
            channel="telegram", external_id="4242", text="hello", provider_id="update:1"
        )
        return await service.process(accepted.conversation_id, accepted.message_id)

    [reply], wakes = run(fake_rasa, session_factory, body)
    assert reply["text"] == "You said: hello" and wakes == 1
    with session_factory() as session:
        [item] = session.scalars(select(OutboxItem)).all()
        assert (item.channel, item.recipient) == ("telegram", "4242")
        assert session.get_one(Message, item.message_id).delivery_state == DeliveryState.QUEUED
        conversation = session.scalars(select(Conversation)).one()
        assert conversation.last_inbound_at is not None
    assert inbound_states(session_factory) == [("hello", DeliveryState.HANDLED)]


def test_a_retried_webhook_is_one_turn(
    fake_rasa: FakeRasa, session_factory: sessionmaker[Session]
) -> None:
    async def body(service: ConversationService) -> list[bool]:
        seen = []
        for _ in range(3):
            accepted = await service.accept(
                channel="telegram", external_id="4242", text="hello", provider_id="update:7"
            )
            seen.append(accepted.is_new)
            if accepted.is_new:
                service.process_soon(accepted.conversation_id, accepted.message_id)
        return seen

    seen, _ = run(fake_rasa, session_factory, body)
    assert seen == [True, False, False]
    assert len(fake_rasa.calls) == 1
    with session_factory() as session:
        assert len(session.scalars(select(OutboxItem)).all()) == 1


def test_the_assistant_reads_rasa_text_and_the_officer_sees_the_citizens(
    fake_rasa: FakeRasa, session_factory: sessionmaker[Session]
) -> None:
    async def body(service: ConversationService) -> None:
        accepted = await service.accept(
            channel="telegram",
            external_id="4242",
            text="Shared a location (Spain)",
            rasa_text='/inform_country{"country": "ES"}',
            provider_id="update:2",
        )
        await service.process(accepted.conversation_id, accepted.message_id)

    run(fake_rasa, session_factory, body)
    assert fake_rasa.calls[0]["message"] == '/inform_country{"country": "ES"}'
    assert inbound_states(session_factory)[0][0] == "Shared a location (Spain)"


def test_an_attachment_is_kept_and_acknowledged_without_the_assistant(
    fake_rasa: FakeRasa, session_factory: sessionmaker[Session]
) -> None:
    async def body(service: ConversationService) -> list[dict[str, Any]]:
        accepted = await service.accept(
            channel="whatsapp",
            external_id="whatsapp:+447700900123",
            text="",
            provider_id="MM1",
            attachments=[
                AttachmentIn(
                    kind="photo", provider_ref="https://media/1", content_type="image/jpeg"
                )
            ],
        )
        return await service.process(accepted.conversation_id, accepted.message_id)

    [ack], _ = run(fake_rasa, session_factory, body)
    assert "photo" in ack["text"] and ack["sender"] == "system"
    assert fake_rasa.calls == []
    with session_factory() as session:
        [attachment] = session.scalars(select(Attachment)).all()
        assert (attachment.kind, attachment.provider_ref) == ("photo", "https://media/1")
    assert inbound_states(session_factory) == [("", DeliveryState.HANDLED)]


def test_a_caption_goes_to_the_assistant_after_the_acknowledgement(
    fake_rasa: FakeRasa, session_factory: sessionmaker[Session]
) -> None:
    async def body(service: ConversationService) -> list[dict[str, Any]]:
        accepted = await service.accept(
            channel="telegram",
            external_id="4242",
            text="this is my damaged passport",
            provider_id="update:3",
            attachments=[AttachmentIn(kind="photo", provider_ref="file-1")],
        )
        return await service.process(accepted.conversation_id, accepted.message_id)

    replies, _ = run(fake_rasa, session_factory, body)
    assert [reply["sender"] for reply in replies] == ["system", "bot"]
    assert replies[1]["text"] == "You said: this is my damaged passport"


def test_a_turn_interrupted_by_a_crash_is_finished_by_recovery(
    fake_rasa: FakeRasa, session_factory: sessionmaker[Session]
) -> None:
    async def crash(service: ConversationService) -> None:
        # Stored and acknowledged, then the process died before the turn ran.
        await service.accept(
            channel="telegram", external_id="4242", text="hello", provider_id="update:9"
        )

    run(fake_rasa, session_factory, crash)
    assert inbound_states(session_factory) == [("hello", DeliveryState.RECEIVED)]

    async def restart(service: ConversationService) -> int:
        return await service.recover_once()

    worked, wakes = run(fake_rasa, session_factory, restart)
    assert worked == 1 and wakes == 1
    assert inbound_states(session_factory) == [("hello", DeliveryState.HANDLED)]
    with session_factory() as session:
        assert len(session.scalars(select(OutboxItem)).all()) == 1


def test_a_fresh_turn_is_left_to_its_own_request(
    fake_rasa: FakeRasa, session_factory: sessionmaker[Session]
) -> None:
    async def body(service: ConversationService) -> int:
        service._stale_turn = timedelta(minutes=5)
        await service.accept(
            channel="telegram", external_id="4242", text="hello", provider_id="update:9"
        )
        return await service.recover_once()

    worked, _ = run(fake_rasa, session_factory, body)
    assert worked == 0 and fake_rasa.calls == []


def test_held_messages_are_answered_in_order_when_the_assistant_returns(
    fake_rasa: FakeRasa, session_factory: sessionmaker[Session]
) -> None:
    fake_rasa.down = True

    async def outage(service: ConversationService) -> list[list[dict[str, Any]]]:
        results = []
        for number, text in enumerate(["my bag was stolen", "are you there?"]):
            accepted = await service.accept(
                channel="sms", external_id="+447700900123", text=text, provider_id=f"SM{number}"
            )
            results.append(await service.process(accepted.conversation_id, accepted.message_id))
        # Still down: recovery leaves them held.
        assert await service.recover_once() == 0
        return results

    (first, second), _ = run(fake_rasa, session_factory, outage)
    assert "+44 20 7008 5000" in first[0]["text"] and first[0]["handoff"] is True
    assert second == []  # told once
    assert [state for _, state in inbound_states(session_factory)] == [DeliveryState.HELD] * 2

    fake_rasa.down = False
    fake_rasa.calls.clear()

    async def recovered(service: ConversationService) -> int:
        return await service.recover_once()

    worked, _ = run(fake_rasa, session_factory, recovered)
    assert worked == 1
    assert [call["message"] for call in fake_rasa.calls] == ["my bag was stolen", "are you there?"]
    assert [state for _, state in inbound_states(session_factory)] == [DeliveryState.HANDLED] * 2
    with session_factory() as session:
        [handoff] = session.scalars(select(Handoff)).all()
        assert handoff.outcome == "assistant-recovered"
        assert session.scalars(select(Conversation)).one().owner == Owner.BOT
        texts = [
            session.get_one(Message, item.message_id).text
            for item in session.scalars(select(OutboxItem).order_by(OutboxItem.id))
        ]
    assert texts[1:] == ["You said: my bag was stolen", "You said: are you there?"]


def test_held_messages_stay_for_the_officer_who_took_the_conversation(
    fake_rasa: FakeRasa, session_factory: sessionmaker[Session]
) -> None:
    fake_rasa.down = True

    async def outage(service: ConversationService) -> None:
        accepted = await service.accept(
            channel="sms", external_id="+447700900123", text="help", provider_id="SM1"
        )
        await service.process(accepted.conversation_id, accepted.message_id)

    run(fake_rasa, session_factory, outage)
    with session_factory() as session, session.begin():
        session.execute(update(Handoff).values(assigned_at=utcnow()))
        session.execute(update(Conversation).values(owner=Owner.OFFICER))
    fake_rasa.down = False
    fake_rasa.calls.clear()

    async def later(service: ConversationService) -> int:
        return await service.recover_once()

    worked, _ = run(fake_rasa, session_factory, later)
    assert worked == 0 and fake_rasa.calls == []


def urgent_responder(sender: str, text: str) -> list[dict[str, Any]]:
    return [
        {
            "recipient_id": sender,
            "custom": {
                "text": "Call +44 20 7008 5000 now.",
                "topic": "arrest-detention",
                "urgent": True,
                "handoff": True,
            },
        }
    ]


def add_online_officer(factory: sessionmaker[Session]) -> None:
    from datetime import time

    from bot.db.models import Officer, Presence, Shift
    from bot.db.session import session_scope

    with session_scope(factory) as session:
        session.add(
            Officer(
                email="duty@fcdo.test",
                name="Duty",
                timezone="UTC",
                presence=Presence.ONLINE,
                shifts=[Shift(weekday=day, starts=time(0), ends=time(0)) for day in range(7)],
            )
        )


def test_joining_the_queue_tells_the_place_and_wait(
    fake_rasa: FakeRasa, session_factory: sessionmaker[Session]
) -> None:
    fake_rasa.responder = urgent_responder
    add_online_officer(session_factory)

    async def body(service: ConversationService) -> list[list[dict[str, Any]]]:
        results = []
        for chat in ("1", "2"):
            accepted = await service.accept(
                channel="telegram", external_id=chat, text="arrested", provider_id="u1"
            )
            results.append(await service.process(accepted.conversation_id, accepted.message_id))
        return results

    (first, second), _ = run(fake_rasa, session_factory, body)
    assert first[-1]["text"].startswith("You are next in the queue; the expected wait is about 6")
    assert second[-1]["text"].startswith("You are number 2 in the queue; the expected wait is")
    assert "+44 20 7008 5000" in second[-1]["text"]


def test_with_nobody_on_duty_a_callback_number_is_kept(
    fake_rasa: FakeRasa, session_factory: sessionmaker[Session]
) -> None:
    fake_rasa.responder = urgent_responder

    async def body(service: ConversationService) -> list[dict[str, Any]]:
        replies = []
        for number, text in enumerate(["arrested", "please call +971 50 123 4567 after 6pm"]):
            accepted = await service.accept(
                channel="sms", external_id="+15550001", text=text, provider_id=f"SM{number}"
            )
            replies += await service.process(accepted.conversation_id, accepted.message_id)
        return replies

    replies, _ = run(fake_rasa, session_factory, body)
    assert "No duty officer is online" in replies[-1]["text"]
    assert len(fake_rasa.calls) == 1  # the bot stays silent while queued
    with session_factory() as session:
        handoff = session.scalars(select(Handoff)).one()
        assert handoff.callback_details is not None
        assert "+971 50 123 4567 after 6pm" in handoff.callback_details
