"""The outbox: queued with the reply, retried with backoff, in order, never sent twice."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.conversations import store as conversations
from bot.conversations.events import EventHub
from bot.conversations.replies import BotReply
from bot.db.models import DeliveryState, Message, OutboxItem, OutboxState, utcnow
from bot.db.session import session_scope
from bot.outbox import store
from bot.outbox.sending import (
    Outgoing,
    PermanentSendError,
    SendError,
    SendResult,
    UndeliverableError,
)
from bot.outbox.store import Backoff
from bot.outbox.worker import OutboxWorker

FAST = Backoff(base_seconds=0.0, max_seconds=0.0, max_attempts=4)


@dataclass
class ScriptedSender:
    """Fails as told, then records what it delivered."""

    channel: str = "telegram"
    failures: list[Exception] = field(default_factory=list)
    sent: list[Outgoing] = field(default_factory=list)

    async def send(self, outgoing: Outgoing) -> SendResult:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(outgoing)
        return SendResult(provider_message_id=f"p{len(self.sent)}")


def queue_reply(
    factory: sessionmaker[Session], text: str, recipient: str = "chat-1", buttons: bool = False
) -> int:
    with session_scope(factory) as session:
        conversation = conversations.get_or_create_conversation(
            session=session, channel="telegram", external_id=recipient
        )
        reply = BotReply(
            text=text, buttons=[{"title": "Yes", "payload": "/affirm"}] if buttons else []
        )
        message = conversations.store_outbound(
            session=session, conversation_id=conversation.id, reply=reply
        )
        store.enqueue(session=session, message=message, channel="telegram", recipient=recipient)
        return message.id


def worker_for(
    factory: sessionmaker[Session], sender: ScriptedSender, backoff: Backoff = FAST
) -> OutboxWorker:
    return OutboxWorker(
        session_factory=factory,
        senders={sender.channel: sender},
        backoff=backoff,
        hub=EventHub(),
        poll_seconds=0.01,
    )


def drain(worker: OutboxWorker, passes: int = 10) -> None:
    async def run() -> None:
        for _ in range(passes):
            await worker.drain_once()

    asyncio.run(run())


def item_of(factory: sessionmaker[Session], message_id: int) -> OutboxItem:
    with factory() as session:
        item = session.scalars(select(OutboxItem).where(OutboxItem.message_id == message_id)).one()
        session.expunge(item)
        return item


def state_of(factory: sessionmaker[Session], message_id: int) -> DeliveryState:
    with factory() as session:
        return session.get_one(Message, message_id).delivery_state


def test_enqueue_marks_the_message_queued(session_factory: sessionmaker[Session]) -> None:
    message_id = queue_reply(session_factory, "hello")
    assert state_of(session_factory, message_id) == DeliveryState.QUEUED
    assert item_of(session_factory, message_id).state == OutboxState.PENDING


def test_a_reply_is_sent_once_with_its_buttons(session_factory: sessionmaker[Session]) -> None:
    message_id = queue_reply(session_factory, "Do you need an officer?", buttons=True)
    sender = ScriptedSender()
    drain(worker_for(session_factory, sender))
    [sent] = sender.sent
    assert (sent.text, sent.recipient, sent.buttons) == (
        "Do you need an officer?",
        "chat-1",
        [{"title": "Yes", "payload": "/affirm"}],
    )
    item = item_of(session_factory, message_id)
    assert (item.state, item.provider_message_id, item.attempts) == (OutboxState.SENT, "p1", 1)
    assert state_of(session_factory, message_id) == DeliveryState.SENT


def test_two_failures_then_success_sends_exactly_once(
    session_factory: sessionmaker[Session],
) -> None:
    message_id = queue_reply(session_factory, "hello")
    sender = ScriptedSender(failures=[SendError("500"), SendError("timeout")])
    drain(worker_for(session_factory, sender))
    assert [outgoing.text for outgoing in sender.sent] == ["hello"]
    item = item_of(session_factory, message_id)
    assert (item.state, item.attempts) == (OutboxState.SENT, 3)


def test_a_failed_attempt_waits_for_its_backoff(session_factory: sessionmaker[Session]) -> None:
    message_id = queue_reply(session_factory, "hello")
    sender = ScriptedSender(failures=[SendError("500")])
    slow = Backoff(base_seconds=60, max_seconds=600, max_attempts=4)
    drain(worker_for(session_factory, sender, slow))
    item = item_of(session_factory, message_id)
    assert item.state == OutboxState.PENDING and item.last_error == "500"
    assert sender.sent == []  # not retried before its time
    due = item.next_attempt_at.replace(tzinfo=utcnow().tzinfo)
    assert timedelta(seconds=29) < due - utcnow() <= timedelta(seconds=60)


def test_backoff_grows_and_is_capped() -> None:
    backoff = Backoff(base_seconds=2, max_seconds=30, max_attempts=8)
    assert 1 <= backoff.delay(1) <= 2
    assert 8 <= backoff.delay(4) <= 16
    assert 15 <= backoff.delay(10) <= 30


def test_giving_up_marks_the_message_failed(session_factory: sessionmaker[Session]) -> None:
    message_id = queue_reply(session_factory, "hello")
    sender = ScriptedSender(failures=[SendError("down")] * 10)
    drain(worker_for(session_factory, sender))
    item = item_of(session_factory, message_id)
    assert (item.state, item.attempts) == (OutboxState.FAILED, FAST.max_attempts)
    assert state_of(session_factory, message_id) == DeliveryState.FAILED
    # Kept, and an officer can send it again.
    with session_scope(session_factory) as session:
        assert store.requeue(session=session, message_id=message_id)
    drain(worker_for(session_factory, sender := ScriptedSender()))
    assert len(sender.sent) == 1


def test_a_permanent_refusal_is_not_retried(session_factory: sessionmaker[Session]) -> None:
    message_id = queue_reply(session_factory, "hello")
    sender = ScriptedSender(failures=[PermanentSendError("bot was blocked by the user")])
    drain(worker_for(session_factory, sender))
    item = item_of(session_factory, message_id)
    assert (item.state, item.attempts) == (OutboxState.FAILED, 1)
    assert sender.sent == []


def test_undeliverable_is_kept_for_an_officer_and_does_not_block_later_replies(
    session_factory: sessionmaker[Session],
) -> None:
    first = queue_reply(session_factory, "first")
    second = queue_reply(session_factory, "second")
    sender = ScriptedSender(failures=[UndeliverableError("outside the 24-hour window")])
    drain(worker_for(session_factory, sender))
    assert state_of(session_factory, first) == DeliveryState.UNDELIVERABLE
    assert item_of(session_factory, first).last_error == "outside the 24-hour window"
    assert [outgoing.text for outgoing in sender.sent] == ["second"]
    assert state_of(session_factory, second) == DeliveryState.SENT


def test_one_recipients_replies_keep_their_order_through_a_retry(
    session_factory: sessionmaker[Session],
) -> None:
    for text in ("one", "two", "three"):
        queue_reply(session_factory, text)
    queue_reply(session_factory, "other chat", recipient="chat-2")
    sender = ScriptedSender(failures=[SendError("500")])
    drain(worker_for(session_factory, sender))
    mine = [outgoing.text for outgoing in sender.sent if outgoing.recipient == "chat-1"]
    assert mine == ["one", "two", "three"]
    assert "other chat" in [outgoing.text for outgoing in sender.sent]


def test_an_item_is_claimed_by_one_worker_only(session_factory: sessionmaker[Session]) -> None:
    queue_reply(session_factory, "hello")
    now = utcnow()
    with session_scope(session_factory) as first, session_scope(session_factory) as second:
        won = store.claim_due(session=first, now=now, lease_seconds=60)
        first.commit()
        lost = store.claim_due(session=second, now=now, lease_seconds=60)
    assert len(won) == 1 and lost == []


def test_a_lease_left_by_a_crashed_worker_expires_and_the_item_is_sent(
    session_factory: sessionmaker[Session],
) -> None:
    message_id = queue_reply(session_factory, "hello")
    with session_scope(session_factory) as session:
        [claimed] = store.claim_due(session=session, now=utcnow(), lease_seconds=60)
    sender = ScriptedSender()
    drain(worker_for(session_factory, sender), passes=1)
    assert sender.sent == []  # still leased to the "crashed" worker
    with session_scope(session_factory) as session:
        later = utcnow() + timedelta(seconds=61)
        [again] = store.claim_due(session=session, now=later, lease_seconds=60)
    assert again.message_id == claimed.message_id == message_id


def test_delivery_reports_only_move_forward(session_factory: sessionmaker[Session]) -> None:
    message_id = queue_reply(session_factory, "hello")
    drain(worker_for(session_factory, ScriptedSender()))
    with session_scope(session_factory) as session:
        changed = store.record_delivery_report(
            session=session, provider_message_id="p1", state=DeliveryState.DELIVERED
        )
        assert changed is not None
        late = store.record_delivery_report(
            session=session, provider_message_id="p1", state=DeliveryState.SENT
        )
        assert late is None
        unknown = store.record_delivery_report(
            session=session, provider_message_id="nope", state=DeliveryState.FAILED
        )
        assert unknown is None
    assert state_of(session_factory, message_id) == DeliveryState.DELIVERED


def test_a_sender_crash_is_retried_not_fatal(session_factory: sessionmaker[Session]) -> None:
    queue_reply(session_factory, "hello")
    sender = ScriptedSender(failures=[RuntimeError("library bug")])
    drain(worker_for(session_factory, sender))
    assert [outgoing.text for outgoing in sender.sent] == ["hello"]


@pytest.mark.parametrize("wake", [True, False])
def test_the_running_worker_sends_when_woken_or_on_its_poll(
    session_factory: sessionmaker[Session], wake: bool
) -> None:
    sender = ScriptedSender()
    worker = worker_for(session_factory, sender)

    async def run() -> None:
        task = asyncio.create_task(worker.run())
        await asyncio.sleep(0.05)
        queue_reply(session_factory, "hello")
        if wake:
            worker.wake()
        for _ in range(200):
            if sender.sent:
                break
            await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(run())
    assert [outgoing.text for outgoing in sender.sent] == ["hello"]
