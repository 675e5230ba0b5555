"""The console's websocket: queue events for every console, messages for an open conversation."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker
from starlette.websockets import WebSocketDisconnect

from tests.app.console.conftest import (
    PASSWORD,
    Account,
    add_account,
    csrf,
    queue_conversation,
    sign_in,
    urgent_responder,
)
from tests.app.console.test_conversation import open_handoff, post, say, start_webchat
from tests.app.conversations.test_feedback import guidance_responder, publish
from tests.support.fake_rasa import FakeRasa


def test_the_socket_needs_a_signed_in_officer(client: TestClient) -> None:
    with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect("/console/ws"):
        pass
    assert refused.value.code == 4401


def test_the_socket_refuses_another_origin(officer_client: TestClient) -> None:
    with (
        pytest.raises(WebSocketDisconnect),
        officer_client.websocket_connect("/console/ws", headers={"origin": "https://evil.example"}),
    ):
        pass


def test_an_urgent_message_that_opens_a_handoff_reaches_every_console(
    officer_client: TestClient, fake_rasa: FakeRasa
) -> None:
    fake_rasa.responder = urgent_responder
    with officer_client.websocket_connect(
        "/console/ws", headers={"origin": "http://testserver"}
    ) as console:
        session_id, headers = start_webchat(officer_client)
        say(officer_client, session_id, headers, "my son has been arrested in Dubai")
        event = console.receive_json()
    assert event == {
        "type": "queue",
        "change": "opened",
        "conversation_id": session_id,
        "urgent": True,
        "by": None,
    }


def test_a_conversation_page_gets_the_citizens_messages_and_colleagues_actions(
    officer_client: TestClient,
    second_client: TestClient,
    bob: Account,
    fake_rasa: FakeRasa,
    session_factory: sessionmaker[Session],
) -> None:
    fake_rasa.responder = urgent_responder
    session_id, headers = start_webchat(officer_client)
    say(officer_client, session_id, headers, "my son has been arrested in Dubai")
    from tests.app.console.conftest import signed_in

    bob_token = signed_in(second_client, bob)
    handoff = open_handoff(session_factory, session_id)
    with officer_client.websocket_connect(f"/console/ws?conversation={session_id}") as console:
        say(officer_client, session_id, headers, "<b>please hurry</b>")
        message = console.receive_json()
        assert message["type"] == "message"
        assert message["message"]["sender"] == "citizen"
        assert message["message"]["text"] == "<b>please hurry</b>"  # inserted as text by the page
        post(second_client, session_id, "take-over", bob_token, handoff_id=handoff.id)
        joined = console.receive_json()  # the citizen is told who joined
        assert joined["type"] == "message" and joined["message"]["sender"] == "system"
        assert "Bob, has joined" in joined["message"]["text"]
        taken = console.receive_json()
        assert taken["type"] == "queue"
        assert (taken["change"], taken["by"]) == ("taken", "Bob Officer")
        post(second_client, session_id, "note", bob_token, text="private words")
        note = console.receive_json()
        assert note == {"type": "note", "conversation_id": session_id}
        post(second_client, session_id, "reply", bob_token, handoff_id=handoff.id, text="On it")
        reply = console.receive_json()
        assert reply["type"] == "message"
        assert (reply["message"]["sender"], reply["message"]["text"]) == ("officer", "On it")


def test_the_socket_closes_when_the_session_ends(officer_client: TestClient) -> None:
    token = csrf(officer_client.get("/console").text)
    with officer_client.websocket_connect("/console/ws") as console:
        officer_client.post("/console/sign-out", data={"csrf_token": token})
        console.send_json({"type": "activity"})
    with (
        pytest.raises(WebSocketDisconnect),
        officer_client.websocket_connect("/console/ws"),
    ):
        pass


def test_queue_events_for_routine_handoffs_are_not_urgent(
    officer_client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    conversation_id, handoff_id = queue_conversation(session_factory)
    token = csrf(officer_client.get("/console").text)
    with officer_client.websocket_connect("/console/ws") as console:
        post(officer_client, conversation_id, "take-over", token, handoff_id=handoff_id)
        event = console.receive_json()
    assert (event["change"], event["urgent"], event["by"]) == ("taken", False, "Alice Officer")


def test_the_socket_tells_the_page_when_the_session_expires(
    officer_client: TestClient,
    session_factory: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sqlalchemy import update

    from bot.console import live
    from bot.db.models import ConsoleSession, utcnow
    from bot.db.session import session_scope

    monkeypatch.setattr(live, "CHECK_SECONDS", 0.05)
    with officer_client.websocket_connect("/console/ws") as console:
        with session_scope(session_factory) as session:
            session.execute(
                update(ConsoleSession).values(last_seen_at=utcnow() - timedelta(minutes=31))
            )
        assert console.receive_json() == {"type": "signed_out"}
        with pytest.raises(WebSocketDisconnect) as closed:
            console.receive_json()
    assert closed.value.code == 4401


def test_a_live_guidance_answer_carries_its_revision_and_review_by_date(
    officer_client: TestClient, fake_rasa: FakeRasa, session_factory: sessionmaker[Session]
) -> None:
    _, revision_id = publish(session_factory, review_by=date(2020, 1, 31))
    fake_rasa.responder = guidance_responder(revision_id)
    session_id, headers = start_webchat(officer_client)
    with officer_client.websocket_connect(f"/console/ws?conversation={session_id}") as console:
        say(officer_client, session_id, headers, "i lost my passport in madrid")
        events = [console.receive_json() for _ in range(3)]  # citizen, answer, question
    answers = [e["message"] for e in events if e["message"]["sender"] == "bot"]
    assert answers[0]["guidance"] == {
        "revision_id": revision_id,
        "title": "Lost or stolen passport",
        "number": 1,
        "review_by": "2020-01-31",
        "review_by_text": "31 January 2020",
        "overdue": True,
    }
    citizen = [e["message"] for e in events if e["message"]["sender"] == "citizen"]
    assert "guidance" not in citizen[0]


def test_an_editors_session_does_not_open_the_socket(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    editor = add_account(session_factory, "ed@example.gov.uk", "Ed Editor", role="editor")
    response = sign_in(client, editor.email, PASSWORD, editor.code())
    assert response.status_code == 303  # signed in, for the guidance admin
    with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect("/console/ws"):
        pass
    assert refused.value.code == 4401
