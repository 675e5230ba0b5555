"""Web chat's turn path: one transaction before the assistant is asked, and one after.

A message for an idle conversation is stored and its turn begun together under
the conversation's lock; one arriving while a turn runs is stored at once and
waits. Either way the message is committed before Rasa is asked.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any, cast

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker

from bot.conversations.replies import transcript_json
from bot.conversations.service import ConversationService, TurnResult, _TurnLock
from bot.db.models import (
    Conversation,
    DeliveryState,
    Handoff,
    Message,
    Sender,
    UnansweredQuestion,
)
from tests.app.conversations.test_service import inbound_states, run, urgent_responder
from tests.support.fake_rasa import FakeRasa

RECEIVED = DeliveryState.RECEIVED
HANDLED = DeliveryState.HANDLED


class CountingSessions:
    """A session factory that counts the sessions (units of work) opened through it."""

    def __init__(self, factory: sessionmaker[Session]):
        self._factory = factory
        self.opened = 0

    def __call__(self) -> Session:
        self.opened += 1
        return self._factory()


async def until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    """Waits (polling from a worker thread) until ``condition`` holds, or fails."""
    for _ in range(int(seconds / 0.01)):
        if await asyncio.to_thread(condition):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never held")


def without_time(item: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in item.items() if key != "created_at"}


def naive(iso: str) -> datetime:
    return datetime.fromisoformat(iso).replace(tzinfo=None)


def texts(turn: TurnResult) -> list[str]:
    return [reply["text"] for reply in turn.replies]


def test_the_message_is_committed_and_announced_before_the_assistant_is_asked(
    fake_rasa: FakeRasa, session_factory: sessionmaker[Session]
) -> None:
    seen_at_rasa: list[list[tuple[str, DeliveryState]]] = []
    fake_rasa.on_call = lambda sender, text: seen_at_rasa.append(inbound_states(session_factory))

    async def body(service: ConversationService) -> tuple[TurnResult, list[dict[str, Any]]]:
        conversation_id = await service.start_conversation(channel="webchat")
        async with service._hub.subscribe(conversation_id) as events:
            turn = await service.receive(conversation_id=conversation_id, text="lost passport")
            return turn, [events.get_nowait() for _ in range(events.qsize())]

    (turn, events), _ = run(fake_rasa, session_factory, body)
    # Another connection saw the message, still to be answered, when Rasa was asked.
    assert seen_at_rasa == [[("lost passport", RECEIVED)]]
    assert texts(turn) == ["You said: lost passport"] and not turn.duplicate
    assert inbound_states(session_factory) == [("lost passport", HANDLED)]
    # Live subscribers get the citizen's message, then the reply, as the transcript has
    # them (SQLite hands the time back without its zone, so that is compared apart).
    with session_factory() as session:
        stored = session.scalars(select(Message).order_by(Message.id)).all()
        expected = [transcript_json(m) for m in stored]
    assert [event["type"] for event in events] == ["message", "message"]
    published = [event["message"] for event in events]
    assert [without_time(item) for item in published] == [without_time(e) for e in expected]
    assert [naive(item["created_at"]) for item in published] == [
        naive(e["created_at"]) for e in expected
    ]


def test_a_turn_for_an_idle_conversation_takes_two_units_of_work(
    fake_rasa: FakeRasa, session_factory: sessionmaker[Session]
) -> None:
    counting = CountingSessions(session_factory)

    async def body(service: ConversationService) -> int:
        conversation_id = await service.start_conversation(channel="webchat")
        before = counting.opened
        await service.receive(conversation_id=conversation_id, text="hello")
        return counting.opened - before

    # Store and decide before the assistant is asked; store its replies after.
    opened, _ = run(fake_rasa, cast(sessionmaker[Session], counting), body)
    assert opened == 2


def guidance_responder(sender: str, text: str) -> list[dict[str, Any]]:
    """A guidance answer (then "Was this helpful?"), or out of scope for "pizza"."""
    if "pizza" in text:
        reply = {"text": "I can only help with consular matters.", "topic": "out-of-scope"}
        return [{"recipient_id": sender, "custom": {**reply, "unanswered": "out_of_scope"}}]
    answer = {"text": "Report it to the police.", "markdown": "Report it to the **police**."}
    custom = {**answer, "topic": "lost-stolen-passport", "country": "PT", "revision_id": 7}
    return [{"recipient_id": sender, "custom": custom}]


def test_a_plain_web_chat_turn_loads_and_flushes_nothing_through_the_orm(
    fake_rasa: FakeRasa, session_factory: sessionmaker[Session]
) -> None:
    # The message path's own steps run prepared statements on the session's
    # connection: the ORM's bookkeeping cost more than the SQL it ran.
    fake_rasa.responder = guidance_responder
    orm_statements: list[str] = []
    flushes: list[int] = []

    def on_orm_execute(state: ORMExecuteState) -> None:
        orm_statements.append(str(state.statement))

    def on_flush(session: Session, *_args: Any) -> None:
        flushes.append(len(session.new) + len(session.dirty))

    async def body(service: ConversationService) -> list[TurnResult]:
        conversation_id = await service.start_conversation(channel="webchat")
        event.listen(Session, "do_orm_execute", on_orm_execute)
        event.listen(Session, "before_flush", on_flush)
        try:
            return [
                await service.receive(conversation_id=conversation_id, text=text, provider_id=key)
                for text, key in [("passport stolen in lisbon", "k1"), ("order a pizza", "k2")]
            ]
        finally:
            event.remove(Session, "do_orm_execute", on_orm_execute)
            event.remove(Session, "before_flush", on_flush)

    answered, declined = run(fake_rasa, session_factory, body)[0]
    assert orm_statements == [] and flushes == []
    # ...and the turns stored what the ORM path stored.
    assert texts(answered) == ["Report it to the police.", "Was this helpful?"]
    assert answered.replies[0]["html"] is not None and answered.replies[1]["buttons"]
    assert texts(declined) == ["I can only help with consular matters."]
    with session_factory() as session:
        conversation = session.scalars(select(Conversation)).one()
        assert (conversation.topic, conversation.country) == ("out-of-scope", "PT")
        assert conversation.last_inbound_at is not None and conversation.message_count == 5
        stored = session.scalars(select(Message).order_by(Message.id)).all()
        assert [(m.sender, m.delivery_state) for m in stored] == [
            (Sender.CITIZEN, HANDLED),
            (Sender.BOT, DeliveryState.DELIVERED),
            (Sender.SYSTEM, DeliveryState.DELIVERED),
            (Sender.CITIZEN, HANDLED),
            (Sender.BOT, DeliveryState.DELIVERED),
        ]
        assert [m.id for m in stored[1:3]] == [r["id"] for r in answered.replies]
        assert stored[1].payload["revision_id"] == 7
        unanswered = session.scalars(select(UnansweredQuestion)).one()
        assert (unanswered.message_id, unanswered.text) == (declined.inbound_id, "order a pizza")
        assert (unanswered.channel, unanswered.country) == ("webchat", "PT")


def test_a_second_message_is_stored_at_once_and_answered_after_the_running_turn(
    fake_rasa: FakeRasa, session_factory: sessionmaker[Session]
) -> None:
    at_rasa, go_on = threading.Event(), threading.Event()

    def hold_the_first(sender: str, text: str) -> None:
        if text == "first":
            at_rasa.set()
            go_on.wait(timeout=10)

    fake_rasa.on_call = hold_the_first

    async def body(service: ConversationService) -> tuple[TurnResult, TurnResult]:
        conversation_id = await service.start_conversation(channel="webchat")
        first = asyncio.create_task(service.receive(conversation_id=conversation_id, text="first"))
        assert await asyncio.to_thread(at_rasa.wait, 10)
        second = asyncio.create_task(
            service.receive(conversation_id=conversation_id, text="second")
        )
        # Kept while the first turn still waits for the assistant.
        await until(
            lambda: inbound_states(session_factory) == [("first", RECEIVED), ("second", RECEIVED)]
        )
        assert not second.done()
        go_on.set()
        return await first, await second

    first, second = run(fake_rasa, session_factory, body)[0]
    assert texts(first) == ["You said: first"]
    assert texts(second) == ["You said: second"]
    assert [call["message"] for call in fake_rasa.calls] == ["first", "second"]
    assert inbound_states(session_factory) == [("first", HANDLED), ("second", HANDLED)]


def test_a_resent_message_gets_the_replies_it_already_had(
    fake_rasa: FakeRasa, session_factory: sessionmaker[Session]
) -> None:
    async def body(service: ConversationService) -> list[TurnResult]:
        conversation_id = await service.start_conversation(channel="webchat")
        return [
            await service.receive(conversation_id=conversation_id, text="hi", provider_id="c-1")
            for _ in range(2)
        ]

    (first, again), _ = run(fake_rasa, session_factory, body)
    assert not first.duplicate and again.duplicate
    assert again.inbound_id == first.inbound_id and again.replies == first.replies
    assert len(fake_rasa.calls) == 1


def test_an_unknown_conversation_is_refused_and_nothing_is_stored(
    fake_rasa: FakeRasa, session_factory: sessionmaker[Session]
) -> None:
    async def body(service: ConversationService) -> None:
        with pytest.raises(LookupError):
            await service.receive(conversation_id="no-such-conversation", text="hello")

    run(fake_rasa, session_factory, body)
    assert inbound_states(session_factory) == [] and fake_rasa.calls == []


def test_while_queued_a_callback_number_is_kept_in_the_same_transaction(
    fake_rasa: FakeRasa, session_factory: sessionmaker[Session]
) -> None:
    fake_rasa.responder = urgent_responder

    async def body(service: ConversationService) -> list[TurnResult]:
        conversation_id = await service.start_conversation(channel="webchat")
        return [
            await service.receive(conversation_id=conversation_id, text=text)
            for text in ("arrested", "call me on +971 50 123 4567")
        ]

    (_, silent), _ = run(fake_rasa, session_factory, body)
    assert silent.replies == [] and len(fake_rasa.calls) == 1
    assert inbound_states(session_factory)[-1] == ("call me on +971 50 123 4567", HANDLED)
    with session_factory() as session:
        handoff = session.scalars(select(Handoff)).one()
        assert handoff.callback_details is not None
        assert "+971 50 123 4567" in handoff.callback_details


def test_the_lock_is_not_idle_while_it_passes_to_a_waiting_turn() -> None:
    async def main() -> list[tuple[bool, bool]]:
        lock = _TurnLock()
        seen = [(lock.locked(), lock.idle())]
        await lock.acquire()
        waiter = asyncio.create_task(lock.acquire())
        await asyncio.sleep(0)  # the waiter is queued
        lock.release()
        # Handing over: not locked, yet a message arriving now must wait its turn.
        seen.append((lock.locked(), lock.idle()))
        await waiter
        seen.append((lock.locked(), lock.idle()))
        lock.release()
        seen.append((lock.locked(), lock.idle()))
        return seen

    assert asyncio.run(main()) == [(False, True), (False, False), (True, False), (False, True)]
