"""The conversation page and every officer action, through the console's forms."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.db.models import (
    Attachment,
    AuditEvent,
    Conversation,
    Handoff,
    Message,
    OfficerNote,
    OutboxItem,
    Owner,
    Sender,
)
from bot.db.session import session_scope
from tests.app.console.conftest import (
    Account,
    csrf,
    queue_conversation,
    signed_in,
    urgent_responder,
)
from tests.support.fake_rasa import FakeRasa


def start_webchat(client: TestClient) -> tuple[str, dict[str, str]]:
    body = client.post("/api/webchat/sessions").json()
    return body["session_id"], {"Authorization": f"Bearer {body['token']}"}


def say(client: TestClient, session_id: str, headers: dict[str, str], text: str) -> Any:
    response = client.post(
        f"/api/webchat/sessions/{session_id}/messages", json={"text": text}, headers=headers
    )
    assert response.status_code == 200
    return response.json()["replies"]


def citizen_transcript(
    client: TestClient, session_id: str, headers: dict[str, str]
) -> list[dict[str, Any]]:
    response = client.get(f"/api/webchat/sessions/{session_id}/messages?after=0", headers=headers)
    assert response.status_code == 200
    body = response.json()
    return list(body["messages"] if isinstance(body, dict) else body)


def arrested_in_dubai(client: TestClient, fake_rasa: FakeRasa) -> tuple[str, dict[str, str]]:
    fake_rasa.responder = urgent_responder
    session_id, headers = start_webchat(client)
    replies = say(client, session_id, headers, "my son has been arrested in Dubai")
    assert any(reply["handoff"] for reply in replies)
    return session_id, headers


def open_handoff(factory: sessionmaker[Session], conversation_id: str) -> Handoff:
    with factory() as session:
        handoff = session.scalars(
            select(Handoff).where(Handoff.conversation_id == conversation_id)
        ).one()
        session.expunge(handoff)
        return handoff


def post(client: TestClient, conversation_id: str, action: str, token: str, **fields: Any) -> Any:
    return client.post(
        f"/console/conversations/{conversation_id}/{action}",
        data={"csrf_token": token, **fields},
        follow_redirects=False,
    )


def take(client: TestClient, factory: sessionmaker[Session], conversation_id: str) -> str:
    token = csrf(client.get("/console").text)
    handoff = open_handoff(factory, conversation_id)
    response = post(client, conversation_id, "take-over", token, handoff_id=handoff.id)
    assert response.status_code == 303, response.text
    return token


def actions_audited(factory: sessionmaker[Session], conversation_id: str) -> list[str]:
    with factory() as session:
        return list(
            session.scalars(
                select(AuditEvent.action)
                .where(AuditEvent.subject == conversation_id)
                .order_by(AuditEvent.id)
            )
        )


def test_the_page_shows_transcript_details_callback_and_attachments(
    officer_client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    conversation_id, handoff_id = queue_conversation(
        session_factory, urgent=True, summary="my son has been arrested in Dubai"
    )
    with session_scope(session_factory) as session:
        session.get_one(Handoff, handoff_id).callback_details = "call +971 50 123 4567 after 6"
        message = session.scalars(select(Message)).first()
        assert message is not None
        session.add(
            Attachment(
                message_id=message.id,
                kind="photo",
                filename="charge-sheet.jpg",
                content_type="image/jpeg",
                size_bytes=204800,
            )
        )
        session.add(
            Message(
                conversation_id=conversation_id,
                direction="outbound",
                sender=Sender.BOT,
                text="Call the 24-hour line.",
            )
        )
    page = officer_client.get(f"/console/conversations/{conversation_id}")
    assert page.status_code == 200
    text = page.text
    assert "my son has been arrested in Dubai" in text
    assert "Call the 24-hour line." in text  # the bot's turns too
    assert "Assistant" in text
    assert "United Arab Emirates (AE)" in text
    assert "call +971 50 123 4567 after 6" in text
    assert "charge-sheet.jpg" in text and "image/jpeg" in text and "200 KB" in text
    assert "Take over this conversation" in text
    assert actions_audited(session_factory, conversation_id) == ["conversation.view"]


def test_citizen_text_is_escaped_on_the_conversation_page(
    officer_client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    conversation_id, _ = queue_conversation(
        session_factory, summary='<script>alert(1)</script><img src=x onerror="alert(2)">'
    )
    text = officer_client.get(f"/console/conversations/{conversation_id}").text
    assert "<script>alert(1)" not in text
    assert "<img src=x" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text


def test_take_over_and_reply_reach_the_web_chat_citizen(
    officer_client: TestClient, fake_rasa: FakeRasa, session_factory: sessionmaker[Session]
) -> None:
    session_id, headers = arrested_in_dubai(officer_client, fake_rasa)
    token = take(officer_client, session_factory, session_id)
    handoff = open_handoff(session_factory, session_id)
    with officer_client.websocket_connect(
        f"/api/webchat/sessions/{session_id}/ws?token={headers['Authorization'][7:]}"
    ) as citizen_socket:
        response = post(
            officer_client,
            session_id,
            "reply",
            token,
            handoff_id=handoff.id,
            text="Hello, I'm a consular officer. Is your son's name Sam?",
        )
        assert response.status_code == 303
        assert response.headers["location"].endswith(f"{session_id}?done=replied")
        done = response.headers["location"]
        live = citizen_socket.receive_json()
    assert live["type"] == "message"
    assert live["message"]["sender"] == "officer"
    assert live["message"]["text"] == "Hello, I'm a consular officer. Is your son's name Sam?"
    transcript = citizen_transcript(officer_client, session_id, headers)
    assert transcript[-1]["sender"] == "officer"
    assert transcript[-1]["text"].startswith("Hello, I'm a consular officer.")
    page = officer_client.get(done).text
    assert "Your reply has been sent" in page
    assert "delivered" in page
    # While the officer has it, the bot stays silent.
    calls = len(fake_rasa.calls)
    assert say(officer_client, session_id, headers, "yes, Sam") == []
    assert len(fake_rasa.calls) == calls
    assert actions_audited(session_factory, session_id) == [
        "handoff.take_over",
        "handoff.reply",
        "conversation.view",
    ]


def test_a_canned_reply_is_sent_when_the_message_is_empty(
    officer_client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    from bot.db.models import CannedReply

    with session_scope(session_factory) as session:
        canned = CannedReply(title="Hello", text="Hello from the consular team.")
        session.add(canned)
        session.flush()
        canned_id = canned.id
    conversation_id, handoff_id = queue_conversation(session_factory)
    token = take(officer_client, session_factory, conversation_id)
    page = officer_client.get(f"/console/conversations/{conversation_id}").text
    assert "Hello from the consular team." in page  # offered in the reply form
    post(officer_client, conversation_id, "reply", token, handoff_id=handoff_id, canned=canned_id)
    with session_factory() as session:
        last = session.scalars(select(Message).order_by(Message.id.desc())).first()
    assert last is not None and last.text == "Hello from the consular team."


def test_a_reply_to_telegram_and_whatsapp_goes_through_the_outbox(
    officer_client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    for channel, external_id in (("telegram", "424242"), ("whatsapp", "whatsapp:+447700900123")):
        conversation_id, handoff_id = queue_conversation(
            session_factory, channel=channel, external_id=external_id
        )
        token = take(officer_client, session_factory, conversation_id)
        post(officer_client, conversation_id, "reply", token, handoff_id=handoff_id, text="Hi")
        with session_factory() as session:
            message = session.scalars(
                select(Message).where(
                    Message.conversation_id == conversation_id, Message.sender == Sender.OFFICER
                )
            ).one()
            item = session.scalars(
                select(OutboxItem).where(OutboxItem.message_id == message.id)
            ).one()
        assert (item.channel, item.recipient) == (channel, external_id)
        page = officer_client.get(f"/console/conversations/{conversation_id}").text
        assert f"console-delivery--{message.delivery_state.value}" in page


def test_reply_before_taking_over_is_refused(
    officer_client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    conversation_id, handoff_id = queue_conversation(session_factory)
    token = csrf(officer_client.get("/console").text)
    response = post(
        officer_client, conversation_id, "reply", token, handoff_id=handoff_id, text="x"
    )
    assert response.status_code == 409
    assert "Take over the conversation first." in response.text


def test_two_officers_take_over_one_wins_and_the_other_is_told_who(
    officer_client: TestClient,
    second_client: TestClient,
    bob: Account,
    session_factory: sessionmaker[Session],
) -> None:
    conversation_id, handoff_id = queue_conversation(session_factory, urgent=True)
    alice_token = csrf(officer_client.get("/console").text)
    bob_token = signed_in(second_client, bob)
    first = post(officer_client, conversation_id, "take-over", alice_token, handoff_id=handoff_id)
    second = post(second_client, conversation_id, "take-over", bob_token, handoff_id=handoff_id)
    assert first.status_code == 303
    assert second.status_code == 409
    assert "Alice Officer has already taken this conversation." in second.text
    assert open_handoff(session_factory, conversation_id).officer_id is not None
    assert (
        "Alice Officer has this conversation."
        in second_client.get(f"/console/conversations/{conversation_id}").text
    )


def test_csrf_missing_or_wrong_is_refused_and_nothing_changes(
    officer_client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    conversation_id, handoff_id = queue_conversation(session_factory)
    for token in ("", "forged-token"):
        response = post(officer_client, conversation_id, "take-over", token, handoff_id=handoff_id)
        assert response.status_code == 403
        response = post(officer_client, conversation_id, "note", token, text="sneaky")
        assert response.status_code == 403
    handoff = open_handoff(session_factory, conversation_id)
    assert handoff.officer_id is None
    with session_factory() as session:
        assert session.scalars(select(OfficerNote)).all() == []
    assert actions_audited(session_factory, conversation_id) == []


def test_notes_are_for_officers_and_never_reach_the_citizen(
    officer_client: TestClient, fake_rasa: FakeRasa, session_factory: sessionmaker[Session]
) -> None:
    session_id, headers = arrested_in_dubai(officer_client, fake_rasa)
    token = csrf(officer_client.get("/console").text)
    response = post(officer_client, session_id, "note", token, text="Family says <b>Sam</b> is 19")
    assert response.status_code == 303
    page = officer_client.get(f"/console/conversations/{session_id}").text
    assert "Family says &lt;b&gt;Sam&lt;/b&gt; is 19" in page
    assert all(
        "Sam" not in item["text"]
        for item in citizen_transcript(officer_client, session_id, headers)
    )
    assert "conversation.note" in actions_audited(session_factory, session_id)


def test_transfer_to_a_colleague(
    officer_client: TestClient,
    bob: Account,
    session_factory: sessionmaker[Session],
) -> None:
    conversation_id, handoff_id = queue_conversation(session_factory)
    token = take(officer_client, session_factory, conversation_id)
    page = officer_client.get(f"/console/conversations/{conversation_id}").text
    assert "Bob Officer" in page
    response = post(
        officer_client, conversation_id, "transfer", token, handoff_id=handoff_id, to=bob.id
    )
    assert response.status_code == 303
    assert open_handoff(session_factory, conversation_id).officer_id == bob.id
    assert "handoff.transfer" in actions_audited(session_factory, conversation_id)
    # Alice no longer owns it: she cannot reply.
    refused = post(officer_client, conversation_id, "reply", token, handoff_id=handoff_id, text="x")
    assert refused.status_code == 409


def test_return_to_the_bot_then_the_bot_answers_again(
    officer_client: TestClient, fake_rasa: FakeRasa, session_factory: sessionmaker[Session]
) -> None:
    session_id, headers = arrested_in_dubai(officer_client, fake_rasa)
    token = take(officer_client, session_factory, session_id)
    handoff = open_handoff(session_factory, session_id)
    response = post(officer_client, session_id, "return", token, handoff_id=handoff.id)
    assert response.status_code == 303
    assert response.headers["location"].endswith("/console?done=returned")
    transcript = citizen_transcript(officer_client, session_id, headers)
    assert transcript[-1]["text"].startswith("You are back with the consular assistant.")
    with session_factory() as session:
        assert session.get_one(Conversation, session_id).owner == Owner.BOT
    fake_rasa.responder = lambda sender, text: [{"recipient_id": sender, "text": f"Bot: {text}"}]
    replies = say(officer_client, session_id, headers, "how do I renew my passport")
    assert [reply["text"] for reply in replies] == ["Bot: how do I renew my passport"]
    assert "handoff.return_to_bot" in actions_audited(session_factory, session_id)


def test_close_with_an_outcome(
    officer_client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    conversation_id, handoff_id = queue_conversation(session_factory)
    token = take(officer_client, session_factory, conversation_id)
    refused = post(officer_client, conversation_id, "close", token, handoff_id=handoff_id)
    assert refused.status_code == 400
    assert "Choose an outcome." in refused.text
    assert open_handoff(session_factory, conversation_id).closed_at is None
    response = post(
        officer_client, conversation_id, "close", token, handoff_id=handoff_id, outcome="resolved"
    )
    assert response.status_code == 303
    closed = open_handoff(session_factory, conversation_id)
    assert closed.closed_at is not None and closed.outcome == "resolved"
    assert "Nobody is waiting" in officer_client.get("/console").text
    assert actions_audited(session_factory, conversation_id)[-1] == "handoff.close"


def test_every_officer_action_is_audited_with_who(
    officer_client: TestClient,
    bob: Account,
    session_factory: sessionmaker[Session],
) -> None:
    conversation_id, handoff_id = queue_conversation(session_factory)
    officer_client.get(f"/console/conversations/{conversation_id}")
    token = take(officer_client, session_factory, conversation_id)
    post(officer_client, conversation_id, "reply", token, handoff_id=handoff_id, text="Hello")
    post(officer_client, conversation_id, "transfer", token, handoff_id=handoff_id, to=bob.id)
    with session_scope(session_factory) as session:
        session.get_one(Handoff, handoff_id).officer_id = None  # Alice takes it back
    take(officer_client, session_factory, conversation_id)
    post(officer_client, conversation_id, "close", token, handoff_id=handoff_id, outcome="resolved")
    with session_factory() as session:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.subject == conversation_id)
        ).all()
    done = {event.action for event in events}
    assert {
        "conversation.view",
        "handoff.take_over",
        "handoff.reply",
        "handoff.transfer",
        "handoff.close",
    } <= done
    assert {event.actor for event in events} == {"officer:alice@example.gov.uk"}
    assert all(event.at is not None for event in events)


def test_an_unknown_conversation_is_not_found(officer_client: TestClient) -> None:
    missing = "00000000-0000-0000-0000-000000000000"
    assert officer_client.get(f"/console/conversations/{missing}").status_code == 404
    assert officer_client.get("/console/conversations/not-a-uuid").status_code == 404
