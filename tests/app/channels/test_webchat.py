"""The public web chat API: sessions, replies, transcript, websocket, outages."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from itsdangerous import TimestampSigner
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.websockets import WebSocketDisconnect

from bot.db.models import Conversation, Handoff, Message, Owner
from tests.support.fake_rasa import FakeActionServer, FakeRasa

REPLY_KEYS = {"id", "text", "buttons", "topic", "country", "urgent", "handoff", "sender", "html"}


def start(client: TestClient) -> tuple[str, dict[str, str]]:
    response = client.post("/api/webchat/sessions")
    assert response.status_code == 201
    body = response.json()
    return body["session_id"], {"Authorization": f"Bearer {body['token']}"}


def say(client: TestClient, session_id: str, headers: dict[str, str], text: str, **extra: Any):
    return client.post(
        f"/api/webchat/sessions/{session_id}/messages",
        json={"text": text, **extra},
        headers=headers,
    )


def embassy_responder(sender: str, text: str) -> list[dict[str, Any]]:
    return [
        {
            "recipient_id": sender,
            "custom": {
                "text": "British Embassy Madrid\nPhone: +34 917 146 300",
                "topic": "contact-embassy",
                "country": "es",
                "urgent": False,
                "handoff": False,
                "buttons": [{"title": "Thanks", "payload": "/goodbye"}, {"title": ""}],
            },
        }
    ]


def test_session_create_returns_id_and_token(client: TestClient) -> None:
    response = client.post("/api/webchat/sessions")
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"session_id", "token"}
    assert body["session_id"] and body["token"]


def test_message_reply_has_the_public_shape_and_metadata(
    client: TestClient, fake_rasa: FakeRasa
) -> None:
    fake_rasa.responder = embassy_responder
    session_id, headers = start(client)

    response = say(client, session_id, headers, "how do I contact the British embassy in Spain")

    assert response.status_code == 200
    [reply] = response.json()["replies"]
    assert set(reply) == REPLY_KEYS
    assert reply["topic"] == "contact-embassy"
    assert reply["country"] == "ES"
    assert "+34 917 146 300" in reply["text"]
    assert reply["buttons"] == [{"title": "Thanks", "payload": "/goodbye"}]
    assert reply["sender"] == "bot"
    assert reply["urgent"] is False and reply["handoff"] is False


def test_small_talk_reply_has_no_topic(client: TestClient) -> None:
    session_id, headers = start(client)
    [reply] = say(client, session_id, headers, "hello").json()["replies"]
    assert reply["topic"] is None and reply["country"] is None
    assert reply["text"] == "You said: hello"


def test_message_is_stored_before_rasa_is_asked_and_sender_is_the_conversation_id(
    client: TestClient, fake_rasa: FakeRasa, session_factory: sessionmaker[Session]
) -> None:
    seen_in_db: list[bool] = []

    def check_stored(sender: str, text: str) -> None:
        with session_factory() as session:
            stored = session.scalars(
                select(Message).where(Message.conversation_id == sender, Message.text == text)
            ).all()
            seen_in_db.append(len(stored) == 1)

    fake_rasa.on_call = check_stored
    session_id, headers = start(client)
    say(client, session_id, headers, "my passport is lost")

    assert fake_rasa.calls == [{"sender": session_id, "message": "my passport is lost"}]
    assert seen_in_db == [True]


def test_every_message_in_and_out_is_stored(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    session_id, headers = start(client)
    say(client, session_id, headers, "hello")
    with session_factory() as session:
        messages = session.scalars(
            select(Message).where(Message.conversation_id == session_id).order_by(Message.id)
        ).all()
        assert [(m.sender.value, m.text) for m in messages] == [
            ("citizen", "hello"),
            ("bot", "You said: hello"),
        ]
        conversation = session.get(Conversation, session_id)
        assert conversation is not None and conversation.channel == "webchat"


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer nonsense", "Basic abc", "Bearer "],
    ids=["missing", "forged", "wrong-scheme", "empty"],
)
def test_bad_token_is_refused_and_nothing_is_stored(
    client: TestClient,
    fake_rasa: FakeRasa,
    session_factory: sessionmaker[Session],
    authorization: str | None,
) -> None:
    session_id, _ = start(client)
    headers = {"Authorization": authorization} if authorization else {}
    response = say(client, session_id, headers, "hello")
    assert response.status_code == 401
    assert fake_rasa.calls == []
    with session_factory() as session:
        assert session.scalars(select(Message)).all() == []


def test_one_session_cannot_use_another_sessions_token(client: TestClient) -> None:
    first_id, first_headers = start(client)
    second_id, second_headers = start(client)
    say(client, first_id, first_headers, "private words")

    assert say(client, first_id, second_headers, "hi").status_code == 401
    response = client.get(f"/api/webchat/sessions/{first_id}/messages", headers=second_headers)
    assert response.status_code == 401


def test_expired_token_is_refused(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    day_ago = TimestampSigner.get_timestamp(TimestampSigner("x")) - 2 * 24 * 3600
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: day_ago)
    session_id, headers = start(client)
    monkeypatch.undo()
    response = say(client, session_id, headers, "hello")
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


@pytest.mark.parametrize("text", ["", "   ", "x" * 2001], ids=["empty", "blank", "too-long"])
def test_bad_text_gets_a_clear_422_and_changes_nothing(
    client: TestClient, fake_rasa: FakeRasa, session_factory: sessionmaker[Session], text: str
) -> None:
    session_id, headers = start(client)
    response = say(client, session_id, headers, text)
    assert response.status_code == 422
    assert fake_rasa.calls == []
    with session_factory() as session:
        assert session.scalars(select(Message)).all() == []


def test_resent_message_with_same_client_id_is_one_turn(
    client: TestClient, fake_rasa: FakeRasa, session_factory: sessionmaker[Session]
) -> None:
    session_id, headers = start(client)
    first = say(client, session_id, headers, "hello", client_message_id="m-1").json()
    again = say(client, session_id, headers, "hello", client_message_id="m-1").json()

    assert first == again
    assert len(fake_rasa.calls) == 1
    with session_factory() as session:
        assert len(session.scalars(select(Message)).all()) == 2


def test_transcript_after_an_id(client: TestClient) -> None:
    session_id, headers = start(client)
    say(client, session_id, headers, "one")
    say(client, session_id, headers, "two")
    url = f"/api/webchat/sessions/{session_id}/messages"

    everything = client.get(url, headers=headers).json()["messages"]
    assert [(m["sender"], m["text"]) for m in everything] == [
        ("citizen", "one"),
        ("bot", "You said: one"),
        ("citizen", "two"),
        ("bot", "You said: two"),
    ]
    later = client.get(url, params={"after": everything[1]["id"]}, headers=headers).json()
    assert [m["text"] for m in later["messages"]] == ["two", "You said: two"]
    assert client.get(url, params={"after": -1}, headers=headers).status_code == 422


def test_websocket_pushes_later_messages(client: TestClient) -> None:
    session_id, headers = start(client)
    token = headers["Authorization"].removeprefix("Bearer ")
    with client.websocket_connect(f"/api/webchat/sessions/{session_id}/ws?token={token}") as ws:
        say(client, session_id, headers, "hello")
        first, second = ws.receive_json(), ws.receive_json()
    assert first["type"] == second["type"] == "message"
    assert (first["message"]["sender"], first["message"]["text"]) == ("citizen", "hello")
    assert (second["message"]["sender"], second["message"]["text"]) == ("bot", "You said: hello")


def test_websocket_with_a_foreign_token_is_closed(client: TestClient) -> None:
    session_id, _ = start(client)
    _, other_headers = start(client)
    token = other_headers["Authorization"].removeprefix("Bearer ")
    url = f"/api/webchat/sessions/{session_id}/ws?token={token}"
    with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect(url) as ws:
        ws.receive_json()
    assert closed.value.code == 1008


def test_rasa_down_gives_a_holding_reply_and_queues_then_recovers(
    client: TestClient, fake_rasa: FakeRasa, session_factory: sessionmaker[Session]
) -> None:
    session_id, headers = start(client)
    fake_rasa.down = True

    [holding] = say(client, session_id, headers, "help me").json()["replies"]
    assert holding["sender"] == "system"
    assert holding["handoff"] is True
    assert "+44 20 7008 5000" in holding["text"]

    # Still down: the message is kept, and the citizen is not told twice.
    assert say(client, session_id, headers, "anyone there?").json()["replies"] == []

    with session_factory() as session:
        conversation = session.get(Conversation, session_id)
        assert conversation is not None and conversation.owner == Owner.QUEUE
        [handoff] = session.scalars(select(Handoff)).all()
        assert handoff.reason == "assistant-unavailable" and handoff.closed_at is None
        texts = [m.text for m in session.scalars(select(Message).order_by(Message.id))]
        assert texts[0] == "help me" and texts[-1] == "anyone there?"

    fake_rasa.down = False
    # Back: the held messages are answered first, in order, then the new one.
    replies = say(client, session_id, headers, "hello again").json()["replies"]
    assert [reply["text"] for reply in replies] == [
        "You said: help me",
        "You said: anyone there?",
        "You said: hello again",
    ]
    with session_factory() as session:
        conversation = session.get(Conversation, session_id)
        assert conversation is not None and conversation.owner == Owner.BOT
        [handoff] = session.scalars(select(Handoff)).all()
        assert handoff.outcome == "assistant-recovered" and handoff.closed_at is not None


def test_rasa_unreachable_gives_a_holding_reply(
    client: TestClient, settings: Any, fake_rasa: FakeRasa
) -> None:
    client.app.state.rasa._base_urls = ["http://127.0.0.1:9"]  # nothing listens on port 9
    session_id, headers = start(client)
    [holding] = say(client, session_id, headers, "hello").json()["replies"]
    assert holding["handoff"] is True and holding["sender"] == "system"


def test_empty_answer_from_rasa_counts_as_an_outage(
    client: TestClient, fake_rasa: FakeRasa, fake_actions: FakeActionServer
) -> None:
    # Rasa answers with nothing when a custom action cannot reach the action server.
    fake_rasa.responder = lambda sender, text: []
    session_id, headers = start(client)
    [holding] = say(client, session_id, headers, "embassy in spain").json()["replies"]
    assert holding["handoff"] is True


def test_reply_asking_for_handoff_queues_and_silences_the_bot(
    client: TestClient, fake_rasa: FakeRasa, session_factory: sessionmaker[Session]
) -> None:
    fake_rasa.responder = lambda sender, text: [
        {
            "recipient_id": sender,
            "custom": {
                "text": "Call +44 20 7008 5000 now. An officer will join you.",
                "topic": "arrest-detention",
                "country": "AE",
                "urgent": True,
                "handoff": True,
            },
        }
    ]
    session_id, headers = start(client)
    reply, queued = say(client, session_id, headers, "my son was arrested in dubai").json()[
        "replies"
    ]
    assert reply["urgent"] is True and reply["handoff"] is True
    # Joining the queue: nobody is on duty in this test, and the citizen is told so honestly.
    assert queued["sender"] == "system" and "No duty officer is online" in queued["text"]
    assert "+44 20 7008 5000" in queued["text"]

    assert say(client, session_id, headers, "please hurry").json()["replies"] == []
    assert len(fake_rasa.calls) == 1
    with session_factory() as session:
        [handoff] = session.scalars(select(Handoff)).all()
        assert (handoff.reason, handoff.priority) == ("urgent", 10)
        assert (handoff.topic, handoff.country) == ("arrest-detention", "AE")
        assert handoff.summary == "my son was arrested in dubai"


def test_guidance_markdown_becomes_sanitised_html_and_reason_is_kept(
    client: TestClient, fake_rasa: FakeRasa, session_factory: sessionmaker[Session]
) -> None:
    fake_rasa.responder = lambda sender, text: [
        {
            "recipient_id": sender,
            "custom": {
                "text": "Report it to the police (https://example.org).",
                "markdown": "Report it to the [police](https://example.org) <script>x()</script>",
                "topic": "case-status",
                "handoff": True,
                "handoff_reason": "identity-check-failed",
            },
        }
    ]
    session_id, headers = start(client)
    reply, _queued = say(client, session_id, headers, "CON-2026-000001").json()["replies"]
    assert '<a href="https://example.org"' in reply["html"]
    assert "<script>" not in reply["html"]
    assert reply["text"] == "Report it to the police (https://example.org)."
    with session_factory() as session:
        [handoff] = session.scalars(select(Handoff)).all()
        assert handoff.reason == "identity-check-failed"


def offering_responder(sender: str, text: str) -> list[dict[str, Any]]:
    return [
        {
            "recipient_id": sender,
            "text": f"You said: {text}",
            "buttons": [{"title": "Talk to an officer", "payload": "/human_agent"}],
        }
    ]


def test_a_typed_intent_is_read_as_words(client: TestClient, fake_rasa: FakeRasa) -> None:
    session_id, headers = start(client)
    say(client, session_id, headers, '/inform_country{"country": "KP"}')
    assert fake_rasa.calls[-1]["message"] == 'inform_country{"country": "KP"}'


def test_an_offered_button_reaches_the_assistant_as_its_payload(
    client: TestClient, fake_rasa: FakeRasa, session_factory: sessionmaker[Session]
) -> None:
    fake_rasa.responder = offering_responder
    session_id, headers = start(client)
    say(client, session_id, headers, "hello")
    # The widget sends the title to show and the payload to act on.
    response = say(client, session_id, headers, "Talk to an officer", payload="/human_agent")
    assert response.status_code == 200
    assert fake_rasa.calls[-1]["message"] == "/human_agent"
    # Older clients send the payload as the text: honoured because it was offered.
    say(client, session_id, headers, "/human_agent")
    assert fake_rasa.calls[-1]["message"] == "/human_agent"
    with session_factory() as session:
        texts = [m.text for m in session.scalars(select(Message).order_by(Message.id))]
    assert "Talk to an officer" in texts


def test_a_payload_never_offered_is_refused(
    client: TestClient, fake_rasa: FakeRasa, session_factory: sessionmaker[Session]
) -> None:
    session_id, headers = start(client)
    response = say(client, session_id, headers, "Officer", payload="/human_agent")
    assert response.status_code == 422
    assert "no longer available" in response.json()["detail"]
    assert fake_rasa.calls == []
    with session_factory() as session:
        assert session.scalars(select(Message)).all() == []
