"""The handoff times and repeat marks the dashboard reads, kept by triggers (migration 0008).

Every way a handoff is written keeps them right, on SQLite and PostgreSQL:
the console's actions (take-over is a guarded Core UPDATE), the ORM, and a
migration over handoffs written before the columns existed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session, sessionmaker

from bot.conversations import store
from bot.db.migrate import alembic_config, upgrade_to_head
from bot.db.models import Conversation, Handoff, Officer
from bot.db.session import make_engine, session_scope
from bot.handoff import actions
from bot.insight import queries
from tests.app.insight.conftest import RANGE, utc

TIMES = ("wait_seconds", "reply_seconds", "close_seconds")


def seconds(later: datetime | None, earlier: datetime | None) -> int | None:
    """Whole seconds, halves away from zero: what the triggers store."""
    if later is None or earlier is None:
        return None
    microseconds = (later - earlier) // timedelta(microseconds=1)
    whole, rest = divmod(abs(microseconds), 1_000_000)
    return (1 if microseconds >= 0 else -1) * (whole + (1 if rest >= 500_000 else 0))


def stored(session: Session, handoff_id: int) -> tuple[int | None, ...]:
    session.expire_all()
    handoff = session.get_one(Handoff, handoff_id)
    return (handoff.wait_seconds, handoff.reply_seconds, handoff.close_seconds)


def expected(session: Session, handoff_id: int) -> tuple[int | None, ...]:
    handoff = session.get_one(Handoff, handoff_id)
    return (
        seconds(handoff.assigned_at, handoff.queued_at),
        seconds(handoff.first_reply_at, handoff.assigned_at),
        seconds(handoff.closed_at, handoff.queued_at),
    )


def test_times_follow_the_officers_actions(history_factory: sessionmaker[Session]) -> None:
    with session_scope(history_factory) as session:
        alice = Officer(email="alice@fcdo.test", name="Alice Smith")
        bob = Officer(email="bob@fcdo.test", name="Bob Jones")
        conversation = store.create_conversation(session=session, channel="webchat")
        session.add_all([alice, bob])
        handoff = store.open_handoff(
            session=session,
            conversation=conversation,
            reason="bot-handoff",
            urgent=False,
            summary="",
        )
        handoff.queued_at -= timedelta(minutes=10)
        session.flush()
        handoff_id, officers = handoff.id, (alice.id, bob.id)
        assert stored(session, handoff_id) == (None, None, None)
        assert handoff.is_repeat is False

    def act(step: str) -> tuple[int | None, ...]:
        with session_scope(history_factory) as session:
            alice, bob = (session.get_one(Officer, officer_id) for officer_id in officers)
            if step == "take over":
                actions.take_over(session=session, officer=alice, handoff_id=handoff_id)
            elif step == "reply":
                actions.reply(session=session, officer=alice, handoff_id=handoff_id, text="Hello")
            elif step == "transfer":
                actions.transfer(session=session, officer=alice, handoff_id=handoff_id, to=bob)
            else:
                actions.close(
                    session=session, officer=bob, handoff_id=handoff_id, outcome="resolved"
                )
            session.flush()
            found = stored(session, handoff_id)
            assert found == expected(session, handoff_id)
            return found

    wait, reply, close = act("take over")
    assert 600 <= wait <= 602 and reply is None and close is None  # type: ignore[operator]
    assert act("reply")[1] in (0, 1)
    act("transfer")  # a new officer: the wait and first reply are from the new take-over
    assert act("close")[2] is not None


@pytest.mark.parametrize(
    ("after", "wait"),
    [
        (timedelta(seconds=90), 90),
        (timedelta(seconds=1, milliseconds=500), 2),
        (timedelta(seconds=2, microseconds=499_999), 2),
        (timedelta(seconds=2, microseconds=500_000), 3),
        (timedelta(seconds=-1, milliseconds=-500), -2),
    ],
)
def test_seconds_round_the_same_on_both_databases(
    history_factory: sessionmaker[Session], after: timedelta, wait: int
) -> None:
    with session_scope(history_factory) as session:
        conversation = store.create_conversation(session=session, channel="webchat")
        queued = utc(4, 1, 9, 0)
        handoff = Handoff(
            conversation_id=conversation.id,
            reason="bot-handoff",
            queued_at=queued,
            assigned_at=queued + after,
        )
        session.add(handoff)
        session.flush()
        assert stored(session, handoff.id) == (wait, None, None)
        # A later UPDATE of another timestamp is followed too.
        session.execute(
            update(Handoff)
            .where(Handoff.id == handoff.id)
            .values(closed_at=queued + timedelta(minutes=5))
        )
        assert stored(session, handoff.id) == (wait, None, 300)


def _conversation(session: Session, external_id: str) -> Conversation:
    return session.scalars(
        select(Conversation).where(Conversation.external_id == external_id)
    ).one()


def test_a_conversation_handed_off_twice_counts_once(
    history_factory: sessionmaker[Session],
) -> None:
    with session_scope(history_factory) as session:
        conversation = _conversation(session, "es-passport-0")
        [first] = conversation.handoffs
        # Its first handoff (27 March) is closed: the citizen asks again on 2 April.
        again = store.open_handoff(
            session=session,
            conversation=conversation,
            reason="bot-handoff",
            urgent=False,
            summary="",
        )
        again.queued_at = utc(4, 2, 9, 0)
        again.assigned_at = utc(4, 2, 9, 1)
        session.flush()
        assert again.id != first.id
        session.expire_all()
        assert (first.is_repeat, again.is_repeat) == (False, True)
        assert stored(session, again.id) == (60, None, None)

    with session_scope(history_factory) as session:
        whole = queries.service_groups(session, RANGE, queries.WHOLE, conversations=True)[0]
        # 10 handoffs, of 9 conversations; the new wait (60 s) joins the others.
        assert (whole.handoffs, whole.conversations) == (10, 9)
        assert whole.spreads["wait"].n == 9
        posts = queries.by_post_grouping(queries.post_names(session))
        madrid = queries.service_groups(session, RANGE, posts, conversations=True)["ES"]
        assert (madrid.handoffs, madrid.conversations) == (8, 7)
        # From 1 April the 27 March handoff is out of range: the repeat counts its conversation.
        april = queries.Filters(start=utc(4, 1, 0).date(), end=RANGE.end)
        later = queries.service_groups(session, april, queries.WHOLE, conversations=True)[0]
        assert (later.handoffs, later.conversations) == (2, 2)  # with Canberra's of 2 April
        shifts = queries.service_groups(session, RANGE, queries.BY_SHIFT)
        assert {shift: group.handoffs for shift, group in shifts.items()} == {0: 1, 1: 9}


def test_the_migration_fills_in_handoffs_written_before_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    command.upgrade(alembic_config(url), "0007")
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO conversation (id, channel, external_id, owner, priority, created_at, "
                "updated_at) VALUES ('c1', 'webchat', 'c1', 'bot', 0, "
                "'2026-04-01 09:00:00.000000', '2026-04-01 09:00:00.000000')"
            )
        )
        for queued, assigned, replied, closed in (
            ("09:01:00.000000", "09:03:30.250000", "09:04:00.750000", "09:20:00.000000"),
            ("10:00:00.000000", None, None, None),
        ):
            connection.execute(
                text(
                    "INSERT INTO handoff (conversation_id, reason, priority, summary, queued_at, "
                    "assigned_at, first_reply_at, closed_at, escalations) VALUES ('c1', "
                    "'bot-handoff', 0, '', :queued, :assigned, :replied, :closed, 0)"
                ),
                {
                    name: None if value is None else f"2026-04-01 {value}"
                    for name, value in (
                        ("queued", queued),
                        ("assigned", assigned),
                        ("replied", replied),
                        ("closed", closed),
                    )
                },
            )
    engine.dispose()
    upgrade_to_head(url)
    engine = make_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(
            text(f"SELECT {', '.join(TIMES)}, is_repeat FROM handoff ORDER BY id")
        ).all()
    engine.dispose()
    # 150.25 s, 30.5 s (a half: away from zero) and 1140 s; the second handoff is a repeat.
    assert [tuple(row) for row in rows] == [(150, 31, 1140, 0), (None, None, None, 1)]
