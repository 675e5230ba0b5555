"""A small hand-made history for the dashboard, on SQLite and on PostgreSQL.

The history (``HISTORY``) is written out row by row so that every expected
figure in the tests can be worked out by hand from this file alone. It
spans 25 March to 7 April 2026: Europe moves its clocks forward on 29 March
(01:00 UTC) and Sydney moves them back on 5 April (16:00 UTC the day
before), and New Delhi is half an hour off the hour, so the local-hour
figure is tested across all three.

PostgreSQL is the ``postgres_server`` fixture of ``tests/app/conftest.py``;
the PostgreSQL tests are skipped where it or its driver is missing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from bot.db.migrate import upgrade_to_head
from bot.db.models import (
    Conversation,
    DeliveryState,
    Direction,
    GuidanceArticle,
    GuidanceFeedback,
    GuidanceRevision,
    Handoff,
    Message,
    Post,
    RevisionStatus,
    Sender,
    UnansweredQuestion,
    UnansweredReason,
)
from bot.db.session import make_engine, make_session_factory, session_scope
from bot.insight.queries import Filters
from tests.app.admin.conftest import admin as admin  # noqa: F401 - fixtures reused
from tests.app.admin.conftest import browser as browser  # noqa: F401
from tests.app.admin.conftest import editor as editor  # noqa: F401
from tests.app.admin.conftest import officer as officer  # noqa: F401
from tests.app.admin.conftest import supervisor as supervisor  # noqa: F401

START = date(2026, 3, 25)
END = date(2026, 4, 7)
RANGE = Filters(start=START, end=END)
TODAY = date(2026, 4, 8)


def utc(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


@dataclass(frozen=True)
class Made:
    """A group of identical conversations in the history."""

    name: str
    count: int
    at: datetime
    country: str | None
    topic: str | None
    channel: str
    urgent: bool
    messages: int


# Conversations, by group (21 in range, one after it).
HISTORY: tuple[Made, ...] = (
    # 11:15 in Madrid (CET, UTC+1).
    Made("es-passport", 5, utc(3, 27, 10, 15), "ES", "lost-stolen-passport", "webchat", False, 2),
    # 12:15 in Madrid (CEST since 29 March, UTC+2).
    Made("es-arrest", 2, utc(3, 30, 10, 15), "ES", "arrest-detention", "whatsapp", True, 4),
    # 11:30 in Canberra (AEDT, UTC+11).
    Made("au-before", 3, utc(4, 2, 0, 30), "AU", "travel-advice", "telegram", False, 3),
    # 10:30 in Canberra (AEST since 5 April, UTC+10).
    Made("au-after", 3, utc(4, 6, 0, 30), "AU", "travel-advice", "telegram", False, 3),
    # 10:10 in New Delhi (UTC+5:30).
    Made("in-entry", 5, utc(3, 26, 4, 40), "IN", "entry-requirements", "webchat", False, 1),
    # France has no post.
    Made("fr", 2, utc(3, 28, 12, 0), "FR", "travel-advice", "sms", False, 2),
    # No country, no topic.
    Made("none", 1, utc(4, 1, 9, 0), None, None, "webchat", False, 1),
    # After the range: counted nowhere.
    Made("es-later", 1, utc(4, 8, 9, 0), "ES", "lost-stolen-passport", "webchat", False, 1),
)

POSTS = (
    ("ES", "British Embassy Madrid", "Madrid", "Europe/Madrid", 0),
    ("ES", "British Consulate General Barcelona", "Barcelona", "Europe/Madrid", 1),
    ("AU", "British High Commission Canberra", "Canberra", "Australia/Sydney", 0),
    ("IN", "British High Commission New Delhi", "New Delhi", "Asia/Kolkata", 0),
)

# Handoffs: (group, index in group, reason, queue wait s, first reply s, close s from queue,
# outcome); queued 60 s after the conversation started. None: not reached yet.
HANDOFFS = (
    ("es-passport", 0, "bot-handoff", 30, 10, 600, "resolved"),
    ("es-passport", 1, "bot-handoff", 45, 20, 700, "resolved"),
    ("es-passport", 2, "bot-handoff", 60, 30, 800, "resolved"),
    ("es-passport", 3, "bot-handoff", 90, 40, 900, "resolved"),
    ("es-passport", 4, "bot-handoff", 120, 50, 1000, "resolved"),
    ("es-arrest", 0, "urgent", 300, 60, 1100, "case-opened"),
    ("es-arrest", 1, "urgent", 600, 70, 1200, "case-opened"),
    ("au-before", 0, "bot-handoff", 200, 15, 500, "resolved"),
    ("fr", 0, "bot-handoff", None, None, None, None),
)


@dataclass
class History:
    """Ids of what the history made, for tests that add to it."""

    conversations: dict[str, list[str]]


def build_history(factory: sessionmaker[Session]) -> History:
    """Writes posts, conversations (with messages), handoffs, guidance, feedback, questions."""
    made: dict[str, list[str]] = {}
    with session_scope(factory) as session:
        for country, name, city, zone, rank in POSTS:
            session.add(
                Post(
                    country=country,
                    kind="embassy",
                    name=name,
                    city=city,
                    address="-",
                    phone="+44 20 7008 5000",
                    email="post@example.invalid",
                    opening_hours="-",
                    timezone=zone,
                    emergency_phone="+44 20 7008 5000",
                    rank=rank,
                )
            )
        first_messages: dict[str, int] = {}
        for group in HISTORY:
            for number in range(group.count):
                conversation = Conversation(
                    channel=group.channel,
                    external_id=f"{group.name}-{number}",
                    topic=group.topic,
                    country=group.country,
                    priority=10 if group.urgent else 0,
                    created_at=group.at,
                    updated_at=group.at,
                )
                session.add(conversation)
                session.flush()
                made.setdefault(group.name, []).append(conversation.id)
                for step in range(group.messages):
                    message = Message(
                        conversation_id=conversation.id,
                        direction=Direction.INBOUND if step % 2 == 0 else Direction.OUTBOUND,
                        sender=Sender.CITIZEN if step % 2 == 0 else Sender.BOT,
                        # Done with: the app's recovery must not answer them again.
                        delivery_state=(
                            DeliveryState.HANDLED if step % 2 == 0 else DeliveryState.DELIVERED
                        ),
                        text="private words that must never reach the dashboard",
                        created_at=group.at + timedelta(seconds=step),
                    )
                    session.add(message)
                    session.flush()
                    first_messages.setdefault(conversation.id, message.id)
        for name, index, reason, wait, reply, close, outcome in HANDOFFS:
            group = next(g for g in HISTORY if g.name == name)
            queued = group.at + timedelta(seconds=60)
            session.add(
                Handoff(
                    conversation_id=made[name][index],
                    reason=reason,
                    priority=10 if group.urgent else 0,
                    topic=group.topic,
                    country=group.country,
                    queued_at=queued,
                    assigned_at=None if wait is None else queued + timedelta(seconds=wait),
                    first_reply_at=(
                        None if reply is None else queued + timedelta(seconds=wait + reply)
                    ),
                    closed_at=None if close is None else queued + timedelta(seconds=close),
                    outcome=outcome,
                )
            )
        _guidance(session, made)
        for index in range(5):
            session.add(
                UnansweredQuestion(
                    message_id=first_messages[made["in-entry"][index]],
                    conversation_id=made["in-entry"][index],
                    channel="webchat",
                    country="IN",
                    reason=UnansweredReason.OUT_OF_SCOPE,
                    text="a citizen's own words",
                    created_at=utc(3, 26, 4, 41),
                )
            )
            session.add(
                UnansweredQuestion(
                    message_id=first_messages[made["es-passport"][index]],
                    conversation_id=made["es-passport"][index],
                    channel="webchat",
                    country="ES",
                    reason=UnansweredReason.MISUNDERSTOOD,
                    text="a citizen's own words",
                    created_at=utc(3, 27, 10, 16),
                )
            )
    return History(made)


def _guidance(session: Session, made: dict[str, list[str]]) -> None:
    """Two generic articles; passport answers 4 yes 1 no, travel advice 6 yes."""
    for topic, review_by, answers, group_names in (
        (
            "lost-stolen-passport",
            date(2026, 1, 1),
            [True, True, True, True, False],
            ["es-passport"],
        ),
        ("travel-advice", date(2030, 1, 1), [True] * 6, ["au-before", "au-after"]),
    ):
        article = GuidanceArticle(topic=topic, country=None)
        session.add(article)
        session.flush()
        revision = GuidanceRevision(
            article_id=article.id,
            number=1,
            status=RevisionStatus.PUBLISHED,
            title=f"About {topic}",
            body="Sample.",
            source_url="https://www.gov.uk/",
            last_reviewed=date(2025, 12, 1),
            review_by=review_by,
            author="sample",
        )
        session.add(revision)
        session.flush()
        conversations = [cid for name in group_names for cid in made[name]]
        for conversation_id, helpful in zip(conversations, answers, strict=False):
            session.add(
                GuidanceFeedback(
                    article_id=article.id,
                    revision_id=revision.id,
                    conversation_id=conversation_id,
                    channel="webchat",
                    helpful=helpful,
                    created_at=utc(4, 6, 1, 0),
                )
            )


_DATABASES = 0


@pytest.fixture(params=["sqlite", "postgresql"])
def history_factory(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[sessionmaker[Session]]:
    """The hand-made history in a migrated database of each kind."""
    global _DATABASES
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'insight.db'}"
    else:
        _DATABASES += 1
        url = request.getfixturevalue("postgres_server")(f"insight_{os.getpid()}_{_DATABASES}")
    upgrade_to_head(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    build_history(factory)
    yield factory
    engine.dispose()
