"""Beside a guidance answer in the transcript: the article revision and its review-by date."""

from __future__ import annotations

import html
from datetime import UTC, date, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from bot.console.views import guidance_sources, source_json
from bot.db.models import GuidanceRevision, Message
from bot.db.session import session_scope
from tests.app.console.test_conversation import say, start_webchat
from tests.app.conversations.test_feedback import guidance_responder, publish
from tests.support.fake_rasa import FakeRasa


def answered(
    client: TestClient, fake_rasa: FakeRasa, factory: sessionmaker[Session], review_by: date
) -> tuple[str, int]:
    """A web chat that got a guidance answer; returns the conversation and revision ids."""
    _, revision_id = publish(factory, review_by=review_by)
    fake_rasa.responder = guidance_responder(revision_id)
    session_id, headers = start_webchat(client)
    say(client, session_id, headers, "i lost my passport in madrid")
    return session_id, revision_id


def page(client: TestClient, conversation_id: str) -> str:
    response = client.get(f"/console/conversations/{conversation_id}")
    assert response.status_code == 200
    return html.unescape(" ".join(response.text.split()))


def test_the_officer_sees_the_revision_and_its_review_by_date(
    officer_client: TestClient, fake_rasa: FakeRasa, session_factory: sessionmaker[Session]
) -> None:
    conversation_id, _ = answered(officer_client, fake_rasa, session_factory, date(2099, 3, 3))

    text = page(officer_client, conversation_id)

    assert "From the article “Lost or stolen passport”, revision 1." in text
    assert 'Review by <time datetime="2099-03-03">3 March 2099</time>' in text
    assert "Past its review-by date" not in text
    # Only the answer carries it: not the question after it, nor the citizen's message.
    assert text.count("Review by <time") == 1


def test_an_answer_past_its_review_by_date_is_flagged(
    officer_client: TestClient, fake_rasa: FakeRasa, session_factory: sessionmaker[Session]
) -> None:
    conversation_id, _ = answered(officer_client, fake_rasa, session_factory, date(2020, 1, 31))

    text = page(officer_client, conversation_id)

    assert 'Review by <time datetime="2020-01-31">31 January 2020</time>' in text
    assert '<strong class="govuk-tag govuk-tag--red">Past its review-by date</strong>' in text


def test_a_deleted_revision_still_shows_the_date_it_was_served_with(
    officer_client: TestClient, fake_rasa: FakeRasa, session_factory: sessionmaker[Session]
) -> None:
    conversation_id, revision_id = answered(
        officer_client, fake_rasa, session_factory, date(2099, 3, 3)
    )
    with session_scope(session_factory) as session:
        session.execute(delete(GuidanceRevision).where(GuidanceRevision.id == revision_id))

    text = page(officer_client, conversation_id)

    assert f"From guidance revision {revision_id}, no longer stored." in text
    # The date stored with the answer (the responder's) stands in.
    assert 'Review by <time datetime="2027-03-03">3 March 2027</time>' in text


def test_a_revision_title_is_escaped(
    officer_client: TestClient, fake_rasa: FakeRasa, session_factory: sessionmaker[Session]
) -> None:
    conversation_id, revision_id = answered(
        officer_client, fake_rasa, session_factory, date(2099, 3, 3)
    )
    with session_scope(session_factory) as session:
        session.execute(
            update(GuidanceRevision)
            .where(GuidanceRevision.id == revision_id)
            .values(title="<script>alert(1)</script>")
        )

    response = officer_client.get(f"/console/conversations/{conversation_id}")

    assert "<script>alert(1)</script>" not in response.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text


@pytest.mark.parametrize(("timezone", "overdue"), [("Europe/London", False), ("Asia/Dubai", True)])
def test_past_is_judged_on_the_officers_own_calendar(
    officer_client: TestClient,
    fake_rasa: FakeRasa,
    session_factory: sessionmaker[Session],
    timezone: str,
    overdue: bool,
) -> None:
    conversation_id, _ = answered(officer_client, fake_rasa, session_factory, date(2027, 3, 3))
    # 23:30 UTC on the review-by day is already the next day in Dubai.
    now = datetime(2027, 3, 3, 23, 30, tzinfo=UTC)
    with session_factory() as session:
        messages = list(
            session.scalars(
                select(Message)
                .where(Message.conversation_id == conversation_id)
                .order_by(Message.id)
            )
        )
        [source] = guidance_sources(session, messages, timezone, now).values()
    assert source.overdue is overdue
    assert (source.title, source.number) == ("Lost or stolen passport", 1)


def test_a_source_for_live_updates_carries_what_the_page_shows(
    officer_client: TestClient, fake_rasa: FakeRasa, session_factory: sessionmaker[Session]
) -> None:
    conversation_id, revision_id = answered(
        officer_client, fake_rasa, session_factory, date(2020, 1, 31)
    )
    with session_factory() as session:
        messages = list(
            session.scalars(select(Message).where(Message.conversation_id == conversation_id))
        )
        [source] = guidance_sources(session, messages, "Europe/London", datetime.now(UTC)).values()
    assert source_json(source) == {
        "revision_id": revision_id,
        "title": "Lost or stolen passport",
        "number": 1,
        "review_by": "2020-01-31",
        "review_by_text": "31 January 2020",
        "overdue": True,
    }
