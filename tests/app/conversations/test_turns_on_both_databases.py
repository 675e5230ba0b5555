"""The message path's own statements, on SQLite and on PostgreSQL (the production profile).

Storing a message, its replies, a kept unanswered question and a queued push
reply run as prepared statements with ``ON CONFLICT DO NOTHING`` where a
retry may repeat them, written for each of the two databases.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.conversations import store
from bot.conversations.service import AttachmentIn, ConversationService, TurnResult
from bot.db.models import (
    Attachment,
    Conversation,
    DeliveryState,
    Message,
    OutboxItem,
    UnansweredQuestion,
    UnansweredReason,
)
from bot.db.session import session_scope
from tests.app.conversations.test_service import run
from tests.app.conversations.test_turn_webchat import guidance_responder
from tests.support.fake_rasa import FakeRasa


def test_web_chat_turns_store_replies_questions_and_resends_once(
    fake_rasa: FakeRasa, any_factory: sessionmaker[Session]
) -> None:
    fake_rasa.responder = guidance_responder

    async def body(service: ConversationService) -> list[TurnResult]:
        conversation_id = await service.start_conversation(channel="webchat")
        sent = [("passport stolen", "k1"), ("passport stolen", "k1"), ("a pizza", "k2")]
        return [
            await service.receive(conversation_id=conversation_id, text=text, provider_id=key)
            for text, key in sent
        ]

    (answered, resent, declined), _ = run(fake_rasa, any_factory, body)
    assert [r["text"] for r in answered.replies] == [
        "Report it to the police.",
        "Was this helpful?",
    ]
    assert resent.duplicate and resent.inbound_id == answered.inbound_id
    assert resent.replies == answered.replies
    assert len(fake_rasa.calls) == 2
    with session_scope(any_factory) as session:
        conversation = session.scalars(select(Conversation)).one()
        assert (conversation.topic, conversation.country) == ("out-of-scope", "PT")
        assert conversation.message_count == 5
        kept = session.scalars(select(UnansweredQuestion)).one()
        assert (kept.message_id, kept.reason) == (declined.inbound_id, "out_of_scope")
        # Recording it again (a turn retried after a crash) keeps the one row.
        connection = session.connection()
        row = store.conversation_row(connection=connection, conversation_id=conversation.id)
        assert row is not None
        again = store.record_unanswered(
            connection=connection,
            conversation=row,
            message_id=declined.inbound_id,
            text="a pizza",
            reason=UnansweredReason.MISUNDERSTOOD,
        )
        assert again is False
    with any_factory() as session:
        assert session.scalars(select(UnansweredQuestion.reason)).all() == ["out_of_scope"]


def test_a_push_channel_message_keeps_its_attachments_and_its_reply_is_queued(
    fake_rasa: FakeRasa, any_factory: sessionmaker[Session]
) -> None:
    async def body(service: ConversationService) -> list[dict[str, Any]]:
        photo = AttachmentIn(kind="photo", provider_ref="file-9", content_type="image/jpeg")
        accepted = await service.accept(
            channel="telegram",
            external_id="4242",
            text="my passport page",
            provider_id="update:9",
            attachments=[photo],
        )
        again = await service.accept(
            channel="telegram", external_id="4242", text="my passport page", provider_id="update:9"
        )
        assert (again.message_id, again.is_new) == (accepted.message_id, False)
        return await service.process(accepted.conversation_id, accepted.message_id)

    replies, wakes = run(fake_rasa, any_factory, body)
    assert wakes == 1
    with any_factory() as session:
        inbound, *outbound = session.scalars(select(Message).order_by(Message.id)).all()
        assert inbound.delivery_state == DeliveryState.HANDLED
        assert [(a.kind, a.provider_ref) for a in session.scalars(select(Attachment))] == [
            ("photo", "file-9")
        ]
        assert [m.id for m in outbound] == [reply["id"] for reply in replies]
        assert {m.delivery_state for m in outbound} == {DeliveryState.QUEUED}
        items = session.scalars(select(OutboxItem).order_by(OutboxItem.id)).all()
        assert [(i.message_id, i.channel, i.recipient) for i in items] == [
            (m.id, "telegram", "4242") for m in outbound
        ]
