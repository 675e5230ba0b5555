"""Feedback results and unanswered questions in the guidance admin."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.conversations import store as conversations
from bot.core.config import Settings
from bot.db.models import (
    AuditEvent,
    GuidanceFeedback,
    GuidanceRevision,
    RevisionStatus,
    UnansweredQuestion,
    UnansweredReason,
)
from bot.db.session import session_scope
from bot.main import create_app
from tests.app.admin.conftest import Browser, token
from tests.app.console.conftest import Account


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """The app, as a client from the loopback address the rate limits expect."""
    app = create_app(settings)
    with TestClient(app, client=("127.0.0.1", 50000)) as test_client:
        yield test_client


def ask(
    factory: sessionmaker[Session],
    texts: list[str],
    *,
    channel: str = "webchat",
    country: str | None = "ES",
) -> list[int]:
    """Unanswered questions, as the channels record them when the assistant falls back."""
    ids = []
    with session_scope(factory) as session:
        conversation = conversations.create_conversation(session=session, channel=channel)
        for text in texts:
            message, _new = conversations.store_inbound(
                session=session, conversation_id=conversation.id, text=text, provider_id=None
            )
            row = UnansweredQuestion(
                message_id=message.id,
                conversation_id=conversation.id,
                channel=channel,
                country=country,
                reason=UnansweredReason.OUT_OF_SCOPE,
                text=text,
            )
            session.add(row)
            session.flush()
            ids.append(row.id)
    return ids


def resolutions(factory: sessionmaker[Session]) -> dict[int, tuple[str | None, str | None]]:
    with factory() as session:
        return {
            row.id: (row.resolution, row.resolved_by)
            for row in session.scalars(select(UnansweredQuestion))
        }


def group_ids(html: str, action: str) -> list[list[int]]:
    """The question ids each group's form of ``action`` carries."""
    forms = re.findall(rf'action="[^"]*/unanswered/{action}">(.*?)</form>', html, re.S)
    return [[int(n) for n in re.findall(r'name="question_id" value="(\d+)"', f)] for f in forms]


# -- unanswered questions --------------------------------------------------------------------


def test_similar_questions_are_grouped_and_shown_escaped(
    browser: Browser, editor: Account, session_factory: sessionmaker[Session]
) -> None:
    dogs = ask(session_factory, ["Can I bring my dog to Spain?", "can i bring my dogs to spain"])
    other = ask(
        session_factory, ["<script>alert(1)</script> weather in Lisbon"], channel="telegram"
    )
    page = browser(editor).get("/admin/unanswered")
    assert page.status_code == 200
    assert group_ids(page.text, "dismiss") == [sorted(dogs), other]
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; weather in Lisbon" in page.text
    assert "3 open questions in 2 groups" in page.text


def test_adding_a_group_as_examples_makes_a_draft_for_review(
    browser: Browser,
    editor: Account,
    lost_passport: int,
    session_factory: sessionmaker[Session],
) -> None:
    ids = ask(session_factory, ["my passport went missing at the beach", "I LOST MY PASSPORT"])
    staff = browser(editor)
    response = staff.post(
        "/admin/unanswered/examples",
        data={"csrf_token": token(staff), "question_id": ids, "article_id": str(lost_passport)},
        follow_redirects=False,
    )
    assert response.status_code == 303
    done = staff.get(response.headers["location"]).text
    assert "1 example question added to a draft of the article" in done
    assert f'/admin/articles/{lost_passport}">Go to the article</a>' in done
    with session_factory() as session:
        draft = session.scalars(
            select(GuidanceRevision).where(GuidanceRevision.status == RevisionStatus.DRAFT)
        ).one()
        # "I LOST MY PASSPORT" is the article's own question in other letters.
        assert draft.example_questions == [
            "i lost my passport",
            "my passport went missing at the beach",
        ]
        assert draft.author == "staff:eddie@example.gov.uk"
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "admin.unanswered_resolved")
        ).one()
    assert event.details["questions"] == 2 and event.details["added"] == 1
    assert "passport" not in str(event.details)
    assert set(resolutions(session_factory).values()) == {
        ("example_questions", "staff:eddie@example.gov.uk")
    }
    assert "There are no unanswered questions" in staff.get("/admin/unanswered").text


def test_adding_to_an_article_in_review_is_refused_and_resolves_nothing(
    browser: Browser,
    editor: Account,
    lost_passport: int,
    session_factory: sessionmaker[Session],
) -> None:
    with session_scope(session_factory) as session:
        live = session.scalars(select(GuidanceRevision)).one()
        session.add(
            GuidanceRevision(
                article_id=lost_passport,
                number=2,
                status=RevisionStatus.IN_REVIEW,
                title=live.title,
                body=live.body,
                source_url=live.source_url,
                last_reviewed=live.last_reviewed,
                author="someone",
            )
        )
    ids = ask(session_factory, ["passport lost in a taxi"])
    staff = browser(editor)
    response = staff.post(
        "/admin/unanswered/examples",
        data={"csrf_token": token(staff), "question_id": ids, "article_id": str(lost_passport)},
    )
    assert response.status_code == 409
    assert "Revision 2 is waiting for review" in response.text
    assert resolutions(session_factory) == {ids[0]: (None, None)}


def test_a_new_article_starts_prefilled_and_dismissing_resolves(
    browser: Browser, reviewer: Account, session_factory: sessionmaker[Session]
) -> None:
    pets = ask(session_factory, ["can my cat fly with me", "can my cat | fly with me?"])
    noise = ask(session_factory, ["asdf"])
    staff = browser(reviewer)
    csrf = token(staff)
    started = staff.post(
        "/admin/unanswered/new-article",
        data={"csrf_token": csrf, "question_id": pets, "topic": "travel-advice"},
        follow_redirects=False,
    )
    assert started.status_code == 303
    target = urlsplit(started.headers["location"])
    assert target.path == "/admin/articles/new"
    assert parse_qs(target.query) == {
        "topic": ["travel-advice"],
        "examples": ["can my cat fly with me|can my cat fly with me?"],
    }
    dismissed = staff.post(
        "/admin/unanswered/dismiss",
        data={"csrf_token": csrf, "question_id": noise},
        follow_redirects=False,
    )
    assert dismissed.headers["location"].endswith("?done=dismissed")
    assert resolutions(session_factory) == {
        pets[0]: ("new_article", "staff:rita@example.gov.uk"),
        pets[1]: ("new_article", "staff:rita@example.gov.uk"),
        noise[0]: ("dismissed", "staff:rita@example.gov.uk"),
    }
    # Acting again on the same group changes nothing and says so.
    again = staff.post(
        "/admin/unanswered/new-article", data={"csrf_token": csrf, "question_id": pets}
    )
    assert again.status_code == 409 and "already been dealt with" in again.text


def test_unanswered_actions_need_the_csrf_token(
    browser: Browser, admin: Account, session_factory: sessionmaker[Session]
) -> None:
    ids = ask(session_factory, ["hello?"])
    response = browser(admin).post(
        "/admin/unanswered/dismiss", data={"csrf_token": "forged", "question_id": ids}
    )
    assert response.status_code == 403
    assert resolutions(session_factory) == {ids[0]: (None, None)}


def test_officers_cannot_open_the_learning_pages(browser: Browser, officer: Account) -> None:
    staff = browser(officer)
    assert staff.get("/admin/unanswered").status_code == 403
    assert staff.get("/admin/feedback").status_code == 403


# -- feedback --------------------------------------------------------------------------------


def answer(
    factory: sessionmaker[Session], article_id: int, helpful: list[bool], *, channel: str
) -> None:
    with session_scope(factory) as session:
        revision = session.scalars(
            select(GuidanceRevision).where(GuidanceRevision.article_id == article_id)
        ).first()
        assert revision is not None
        for value in helpful:
            conversation = conversations.create_conversation(session=session, channel=channel)
            session.add(
                GuidanceFeedback(
                    article_id=article_id,
                    revision_id=revision.id,
                    conversation_id=conversation.id,
                    channel=channel,
                    helpful=value,
                    created_at=datetime.now(UTC) - timedelta(days=1),
                )
            )


def test_feedback_results_per_article_and_channel(
    browser: Browser, editor: Account, lost_passport: int, session_factory: sessionmaker[Session]
) -> None:
    answer(session_factory, lost_passport, [True, False, False], channel="webchat")
    answer(session_factory, lost_passport, [True], channel="telegram")
    staff = browser(editor)
    page = staff.get("/admin/feedback").text
    assert "4 answers, 50% helpful (2 yes, 2 no)" in page
    assert f'/admin/articles/{lost_passport}">Lost or stolen passport abroad</a>' in page
    split = staff.get("/admin/feedback", params={"split": "channel"}).text
    cells = re.findall(r'govuk-table__cell">(Web chat|Telegram)</td>', split)
    assert cells == ["Web chat", "Telegram"]  # least helpful first
    assert '<strong class="govuk-tag govuk-tag--red">33%</strong>' in split


def test_feedback_dates_are_checked(browser: Browser, editor: Account) -> None:
    staff = browser(editor)
    page = staff.get("/admin/feedback", params={"from": "2026-12-01", "to": "2026-11-01"}).text
    assert '<a href="#from">The start date must be on or before the end date</a>' in page
    wrong = staff.get("/admin/feedback", params={"to": "yesterday"}).text
    assert '<a href="#to">Enter the end date as a real date' in wrong
    old = staff.get("/admin/feedback", params={"from": "2020-01-01", "to": "2020-01-31"}).text
    assert 'Nobody answered "Was this helpful?" from 2020-01-01 to 2020-01-31' in old
