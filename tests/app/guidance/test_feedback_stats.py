"""Helpfulness per article, revision and channel: counted in SQL over a date range."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from bot.conversations import store as conversations
from bot.db.models import GuidanceFeedback
from bot.db.session import session_scope
from bot.guidance import feedback_stats
from bot.guidance.feedback_stats import Period
from bot.guidance.store import RevisionDraft, add_revision, create_article, publish_revision

DAY = datetime(2026, 10, 10, 12, tzinfo=UTC)


def article(session: Session, topic: str, titles: list[str]) -> tuple[int, list[int]]:
    created = create_article(session=session, topic=topic, country=None)
    ids = []
    for title in titles:
        draft = RevisionDraft(
            title=title, body="Body.", source_url="https://www.gov.uk/x", last_reviewed=date.today()
        )
        revision = add_revision(session=session, article=created, draft=draft, author="a")
        publish_revision(session=session, revision=revision, reviewer="r")
        ids.append(revision.id)
    return created.id, ids


def answer(
    session: Session,
    article_id: int,
    revision_id: int,
    helpful: bool,
    *,
    channel: str = "webchat",
    at: datetime = DAY,
) -> None:
    conversation = conversations.create_conversation(session=session, channel=channel)
    session.add(
        GuidanceFeedback(
            article_id=article_id,
            revision_id=revision_id,
            conversation_id=conversation.id,
            channel=channel,
            helpful=helpful,
            created_at=at,
        )
    )


@pytest.fixture
def answered(session_factory: sessionmaker[Session]) -> dict[str, int]:
    """Passport: 3 yes, 1 no over two revisions and two channels; kidnap: 1 yes, 2 no."""
    with session_scope(session_factory) as session:
        passport, (first, second) = article(session, "lost-stolen-passport", ["Old", "New"])
        kidnap, (only,) = article(session, "kidnap", ["Kidnap"])
        answer(session, passport, first, False)
        answer(session, passport, first, True)
        answer(session, passport, second, True, channel="telegram")
        answer(session, passport, second, True)
        answer(session, kidnap, only, True)
        answer(session, kidnap, only, False, channel="whatsapp")
        answer(session, kidnap, only, False, at=datetime(2026, 12, 1, tzinfo=UTC))
    return {"passport": passport, "kidnap": kidnap}


def test_least_helpful_article_comes_first(
    session_factory: sessionmaker[Session], answered: dict[str, int]
) -> None:
    with session_factory() as session:
        rows = feedback_stats.helpfulness(session=session)
    assert [(row.topic, row.yes, row.no, row.percent) for row in rows] == [
        ("kidnap", 1, 2, 33),
        ("lost-stolen-passport", 3, 1, 75),
    ]
    # Not split by revision: the title is the latest answered revision's.
    assert rows[1].title == "New" and rows[1].revision_number is None


def test_split_by_revision_and_channel_over_a_date_range(
    session_factory: sessionmaker[Session], answered: dict[str, int]
) -> None:
    period = Period(start=date(2026, 10, 1), end=date(2026, 10, 31))
    with session_factory() as session:
        rows = feedback_stats.helpfulness(
            session=session, period=period, by_revision=True, by_channel=True, order="most-answers"
        )
        totals = feedback_stats.totals(session=session, period=period)
    found = {(row.topic, row.revision_number, row.channel): (row.yes, row.no) for row in rows}
    assert found == {
        ("lost-stolen-passport", 1, "webchat"): (1, 1),
        ("lost-stolen-passport", 2, "webchat"): (1, 0),
        ("lost-stolen-passport", 2, "telegram"): (1, 0),
        ("kidnap", 1, "webchat"): (1, 0),
        ("kidnap", 1, "whatsapp"): (0, 1),
    }
    assert rows[0].answers == 2 and rows[0].title == "Old"
    assert totals == (4, 2)


def test_counting_is_one_grouped_query(
    session_factory: sessionmaker[Session], answered: dict[str, int]
) -> None:
    statements: list[str] = []
    with session_factory() as session:
        engine = session.get_bind()
        listener = lambda *args: statements.append(args[2])  # noqa: E731
        event.listen(engine, "before_cursor_execute", listener)
        try:
            feedback_stats.helpfulness(session=session, by_channel=True)
        finally:
            event.remove(engine, "before_cursor_execute", listener)
    counting = [sql for sql in statements if "guidance_feedback" in sql]
    assert len(counting) == 1 and "GROUP BY" in counting[0]
    # The other two read titles and topics of the counted articles, not answers.
    assert len(statements) == 3


def test_no_answers_gives_no_rows(session_factory: sessionmaker[Session]) -> None:
    with session_factory() as session:
        assert feedback_stats.helpfulness(session=session) == []
        assert feedback_stats.totals(session=session) == (0, 0)
