"""'Was this helpful?' after a guidance answer: asked, answered, recorded, never forged.

Web chat stands in for every channel here (the decision is made once, in the
conversation service); the Telegram and Twilio tests check how each channel
shows the question and brings the press back.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from bot.conversations.replies import parse_rasa_output
from bot.db.models import (
    Conversation,
    DeliveryState,
    Direction,
    GuidanceFeedback,
    GuidanceRevision,
    Message,
    Owner,
)
from bot.db.session import session_scope
from bot.guidance import feedback
from bot.guidance.store import RevisionDraft, add_revision, create_article, publish_revision
from tests.app.channels.test_webchat import say, start
from tests.support.fake_rasa import FakeRasa

ANSWER = "Report a lost passport to the police, then apply for an emergency travel document."

Responder = Callable[[str, str], list[dict[str, Any]]]


def publish(
    factory: sessionmaker[Session],
    *,
    topic: str = "lost-stolen-passport",
    country: str | None = "ES",
    review_by: date | None = date(2027, 3, 3),
) -> tuple[int, int]:
    """A published article revision; returns (article id, revision id)."""
    with session_scope(factory) as session:
        article = create_article(session=session, topic=topic, country=country)
        revision = add_revision(
            session=session,
            article=article,
            draft=RevisionDraft(
                title="Lost or stolen passport",
                body=ANSWER,
                source_url="https://www.gov.uk/emergency-travel-document",
                last_reviewed=date(2026, 10, 1),
                review_by=review_by,
            ),
            author="editor@example.gov.uk",
        )
        publish_revision(session=session, revision=revision, reviewer="reviewer@example.gov.uk")
        return article.id, revision.id


def guidance_responder(revision_id: int | None, **extra: Any) -> Responder:
    """Answers anything that is not a payload with a guidance answer from the revision."""

    def respond(sender: str, text: str) -> list[dict[str, Any]]:
        if text.startswith("/"):
            return [{"recipient_id": sender, "text": f"Heard {text}"}]
        custom: dict[str, Any] = {
            "text": ANSWER,
            "markdown": ANSWER,
            "topic": "lost-stolen-passport",
            "country": "ES",
            "urgent": False,
            "handoff": False,
            "buttons": [],
            **extra,
        }
        if revision_id is not None:
            custom["revision_id"] = revision_id
            custom["review_by"] = "2027-03-03"
        return [{"recipient_id": sender, "custom": custom}]

    return respond


def feedback_rows(factory: sessionmaker[Session]) -> list[GuidanceFeedback]:
    with factory() as session:
        return list(session.scalars(select(GuidanceFeedback).order_by(GuidanceFeedback.id)))


def inbound(factory: sessionmaker[Session]) -> list[Message]:
    with factory() as session:
        return list(
            session.scalars(
                select(Message).where(Message.direction == Direction.INBOUND).order_by(Message.id)
            )
        )


@pytest.fixture
def revision(session_factory: sessionmaker[Session], fake_rasa: FakeRasa) -> tuple[int, int]:
    """A published revision the fake assistant answers from."""
    article_id, revision_id = publish(session_factory)
    fake_rasa.responder = guidance_responder(revision_id)
    return article_id, revision_id


def asked(client: TestClient) -> tuple[str, dict[str, str], list[dict[str, Any]]]:
    """A web chat that asked about a lost passport: its session, headers and the replies."""
    session_id, headers = start(client)
    replies = say(client, session_id, headers, "i lost my passport in madrid").json()["replies"]
    return session_id, headers, replies


# -- asking ---------------------------------------------------------------------------


def test_a_guidance_answer_is_followed_by_the_question_with_yes_and_no(
    client: TestClient, session_factory: sessionmaker[Session], revision: tuple[int, int]
) -> None:
    _, revision_id = revision
    _, _, replies = asked(client)

    answer, question = replies
    assert answer["text"] == ANSWER and answer["sender"] == "bot"
    assert question["sender"] == "system" and question["text"] == "Was this helpful?"
    assert question["buttons"] == [
        {"title": "Yes", "payload": f'/feedback{{"revision_id":{revision_id},"helpful":true}}'},
        {"title": "No", "payload": f'/feedback{{"revision_id":{revision_id},"helpful":false}}'},
    ]
    assert question["topic"] is None and question["handoff"] is False
    with session_factory() as session:
        stored = session.get_one(Message, answer["id"])
        assert (stored.payload["revision_id"], stored.payload["review_by"]) == (
            revision_id,
            "2027-03-03",
        )


@pytest.mark.parametrize("extra", [{"urgent": True}, {"handoff": True}], ids=["urgent", "handoff"])
def test_no_question_after_an_urgent_or_handoff_turn(
    client: TestClient,
    fake_rasa: FakeRasa,
    revision: tuple[int, int],
    extra: dict[str, Any],
) -> None:
    fake_rasa.responder = guidance_responder(revision[1], **extra)
    _, _, replies = asked(client)
    assert "Was this helpful?" not in [reply["text"] for reply in replies]


def test_no_question_when_the_action_server_names_no_revision(
    client: TestClient, fake_rasa: FakeRasa
) -> None:
    # An older action server: the answer is shown as before, nothing is asked.
    fake_rasa.responder = guidance_responder(None)
    _, _, replies = asked(client)
    assert [reply["text"] for reply in replies] == [ANSWER]


def test_the_question_is_not_asked_again_once_answered(
    client: TestClient, revision: tuple[int, int]
) -> None:
    session_id, headers, replies = asked(client)
    yes = replies[1]["buttons"][0]
    say(client, session_id, headers, yes["title"], payload=yes["payload"])

    again = say(client, session_id, headers, "lost passport again").json()["replies"]

    assert [reply["text"] for reply in again] == [ANSWER]


# -- answering ----------------------------------------------------------------------------


def test_yes_is_recorded_and_thanked_without_asking_the_assistant(
    client: TestClient,
    fake_rasa: FakeRasa,
    session_factory: sessionmaker[Session],
    revision: tuple[int, int],
) -> None:
    article_id, revision_id = revision
    session_id, headers, replies = asked(client)
    yes = replies[1]["buttons"][0]

    response = say(client, session_id, headers, yes["title"], payload=yes["payload"])

    assert response.status_code == 200
    [thanks] = response.json()["replies"]
    assert thanks["sender"] == "system" and thanks["text"] == "Thank you for your feedback."
    assert len(fake_rasa.calls) == 1  # only the question about the passport
    [row] = feedback_rows(session_factory)
    assert (row.article_id, row.revision_id, row.conversation_id) == (
        article_id,
        revision_id,
        session_id,
    )
    assert (row.channel, row.helpful) == ("webchat", True)
    pressed = inbound(session_factory)[-1]
    assert (pressed.text, pressed.delivery_state) == ("Yes", DeliveryState.HANDLED)


def test_no_says_how_to_ask_again_and_a_second_press_changes_the_answer(
    client: TestClient, session_factory: sessionmaker[Session], revision: tuple[int, int]
) -> None:
    session_id, headers, replies = asked(client)
    yes, no = replies[1]["buttons"]

    [thanks] = say(client, session_id, headers, no["title"], payload=no["payload"]).json()[
        "replies"
    ]
    assert "in other words" in thanks["text"] and '"talk to an officer"' in thanks["text"]
    assert [row.helpful for row in feedback_rows(session_factory)] == [False]

    say(client, session_id, headers, yes["title"], payload=yes["payload"])
    assert [row.helpful for row in feedback_rows(session_factory)] == [True]


def test_the_next_message_goes_to_the_assistant_as_usual(
    client: TestClient, fake_rasa: FakeRasa, revision: tuple[int, int]
) -> None:
    session_id, headers, replies = asked(client)
    yes = replies[1]["buttons"][0]
    say(client, session_id, headers, yes["title"], payload=yes["payload"])

    say(client, session_id, headers, "and what about my visa")

    assert [call["message"] for call in fake_rasa.calls] == [
        "i lost my passport in madrid",
        "and what about my visa",
    ]


def test_a_typed_feedback_payload_is_read_as_words(
    client: TestClient,
    fake_rasa: FakeRasa,
    session_factory: sessionmaker[Session],
    revision: tuple[int, int],
) -> None:
    session_id, headers, replies = asked(client)
    offered = replies[1]["buttons"][1]["payload"]  # offered, but typed rather than pressed

    say(client, session_id, headers, offered)

    assert fake_rasa.calls[-1]["message"] == offered.lstrip("/")
    assert feedback_rows(session_factory) == []


def test_a_payload_for_a_revision_never_offered_is_refused(
    client: TestClient,
    fake_rasa: FakeRasa,
    session_factory: sessionmaker[Session],
    revision: tuple[int, int],
) -> None:
    _, other = publish(session_factory, topic="passport-renewal-abroad", country=None)
    session_id, headers, _ = asked(client)

    forged = feedback.feedback_payload(other, False)
    response = say(client, session_id, headers, "No", payload=forged)

    assert response.status_code == 422
    assert feedback_rows(session_factory) == []
    assert len(fake_rasa.calls) == 1


def test_a_press_for_a_revision_that_no_longer_exists_records_nothing(
    client: TestClient, session_factory: sessionmaker[Session], revision: tuple[int, int]
) -> None:
    _, revision_id = revision
    session_id, headers, replies = asked(client)
    with session_scope(session_factory) as session:
        session.execute(delete(GuidanceRevision).where(GuidanceRevision.id == revision_id))
    yes = replies[1]["buttons"][0]

    [thanks] = say(client, session_id, headers, yes["title"], payload=yes["payload"]).json()[
        "replies"
    ]

    assert thanks["text"] == "Thank you for your feedback."
    assert feedback_rows(session_factory) == []


def test_a_press_while_an_officer_has_the_conversation_is_recorded_silently(
    client: TestClient,
    fake_rasa: FakeRasa,
    session_factory: sessionmaker[Session],
    revision: tuple[int, int],
) -> None:
    session_id, headers, replies = asked(client)
    with session_scope(session_factory) as session:
        session.get_one(Conversation, session_id).owner = Owner.OFFICER
    no = replies[1]["buttons"][1]

    response = say(client, session_id, headers, no["title"], payload=no["payload"])

    assert response.json()["replies"] == []  # only the officer speaks now
    assert [row.helpful for row in feedback_rows(session_factory)] == [False]
    assert len(fake_rasa.calls) == 1


def test_the_service_ignores_a_feedback_payload_no_channel_offered(
    client: TestClient,
    fake_rasa: FakeRasa,
    session_factory: sessionmaker[Session],
    revision: tuple[int, int],
) -> None:
    # Defence in depth: whatever a channel passes on, the service checks the offer itself.
    _, other = publish(session_factory, topic="passport-renewal-abroad", country=None)
    session_id, _, _ = asked(client)
    forged = feedback.feedback_payload(other, True)
    service = client.app.state.conversations  # type: ignore[attr-defined]

    client.portal.call(  # type: ignore[union-attr]
        lambda: service.receive(conversation_id=session_id, text="Yes", rasa_text=forged)
    )

    assert fake_rasa.calls[-1]["message"] == forged.lstrip("/")
    assert feedback_rows(session_factory) == []
    with session_factory() as session:
        texts = session.scalars(select(Message.text).order_by(Message.id)).all()
    assert feedback.THANKS not in texts  # no thank-you for a forged press


# -- the payload and the reply metadata ------------------------------------------------------


def test_feedback_payloads_round_trip_and_nothing_else_parses() -> None:
    assert feedback.parse_payload(feedback.feedback_payload(12, True)) == feedback.Choice(12, True)
    assert feedback.parse_payload(feedback.feedback_payload(7, False)) == feedback.Choice(7, False)
    for text in [
        '/feedback{"revision_id": 12, "helpful": true}',  # not our compact form
        '/feedback{"helpful":true,"revision_id":12}',
        '/feedback{"revision_id":0,"helpful":true}',
        '/feedback{"revision_id":"12","helpful":true}',
        '/feedback{"revision_id":12,"helpful":1}',
        '/feedback{"revision_id":12,"helpful":true,"x":1}',
        '/feedback{"revision_id":12,"helpful":true} ',
        'feedback{"revision_id":12,"helpful":true}',
        "/feedback",
        "",
        None,
    ]:
        assert feedback.parse_payload(text) is None, text
    assert len(feedback.feedback_payload(10**17, False)) < 64  # fits any button limit


def test_reply_metadata_is_parsed_strictly() -> None:
    def parsed(**custom: Any) -> Any:
        [reply] = parse_rasa_output([{"custom": {"text": "x", **custom}}])
        return reply

    good = parsed(revision_id=3, review_by="2027-03-03", unanswered="misunderstood")
    assert (good.revision_id, good.review_by, good.unanswered) == (3, "2027-03-03", "misunderstood")
    assert good.payload()["revision_id"] == 3
    bad = parsed(revision_id=True, review_by="3 March", unanswered="because")
    assert (bad.revision_id, bad.review_by, bad.unanswered) == (None, None, None)
    assert "revision_id" not in bad.payload()
    assert parsed(revision_id="3").revision_id is None
    assert json.dumps(parsed(revision_id=5).payload())  # stays JSON for the Message
