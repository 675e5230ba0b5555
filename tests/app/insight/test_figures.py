"""Every figure against the hand-made history (conftest.HISTORY), on SQLite and PostgreSQL.

Expected numbers are worked out by hand in the comments from the history's
table; H is a cell hidden by small-cell suppression ("fewer than 5").
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.db.models import Conversation, Message
from bot.db.session import session_scope
from bot.insight import queries
from bot.insight.queries import HIDDEN as H
from bot.insight.queries import NO_POST, NO_TOPIC, Figure
from tests.app.insight.conftest import RANGE, TODAY

MADRID = "British Embassy Madrid"
CANBERRA = "British High Commission Canberra"
DELHI = "British High Commission New Delhi"


def figure(factory: sessionmaker[Session], query: Any, filters: Any = RANGE) -> Figure:
    with session_scope(factory) as session:
        result: Figure = query(session, filters)
        return result


def rows(result: Figure) -> dict[str, list[Any]]:
    return {row[0]: row[1:] for row in result.rows}


def test_messages_are_counted_by_the_triggers(history_factory: sessionmaker[Session]) -> None:
    with session_scope(history_factory) as session:
        counts = dict(
            session.execute(select(Conversation.external_id, Conversation.message_count)).all()
        )
        assert counts["es-arrest-0"] == 4
        assert counts["none-0"] == 1
        first = session.scalars(
            select(Message).join(Conversation).where(Conversation.external_id == "es-arrest-0")
        ).first()
        session.delete(first)
        session.flush()
        assert (
            session.scalar(
                select(Conversation.message_count).where(Conversation.external_id == "es-arrest-0")
            )
            == 3
        )


def test_over_time_by_day(history_factory: sessionmaker[Session]) -> None:
    result = figure(history_factory, queries.over_time)
    days = rows(result)
    assert len(days) == 14  # 25 March to 7 April, every day, empty ones too
    assert days["2026-03-25"] == [0, 0, 0]
    assert days["2026-03-26"] == [5, 0, 5]  # New Delhi: 5 conversations, 1 message each
    assert days["2026-03-27"] == [5, 0, 10]  # Madrid passports: 5 x 2 messages
    assert days["2026-03-28"] == [H, 0, H]  # France: 2
    assert days["2026-03-30"] == [H, H, H]  # Madrid arrests: 2, both urgent
    assert days["2026-04-01"] == [H, 0, H]  # no country: 1
    assert days["2026-04-02"] == [H, 0, H]  # Canberra before the clocks change: 3
    assert days["2026-04-06"] == [H, 0, H]  # Canberra after: 3
    # Hidden days add up to 2+2+1+3+3 = 11: no second cell needs hiding.
    # 8 April (after the range) counts nowhere; urgent total 2 is hidden.
    assert result.total == ["Total", 21, H, 46]


def test_over_time_goes_weekly_for_long_ranges(history_factory: sessionmaker[Session]) -> None:
    long = replace(RANGE, start=RANGE.end.replace(month=1, day=1))  # 1 January to 7 April
    result = figure(history_factory, queries.over_time)
    assert result.title.endswith("(by day)")
    weekly = figure(history_factory, queries.over_time, long)
    assert weekly.title.endswith("(by week)")
    weeks = rows(weekly)
    # Weeks start on Mondays: 23 March holds New Delhi, Madrid passports and France (12).
    assert weeks["Week from 2026-03-23"][0] == 12
    # 30 March: Madrid arrests, no country, Canberra before (2+1+3 = 6), hidden
    # because 6 April (Canberra after, 3) is hidden and 12 + 6 + 3 = 21 is shown.
    assert weeks["Week from 2026-03-30"][0] == H
    assert weeks["Week from 2026-04-06"][0] == H
    assert weekly.total is not None and weekly.total[1] == 21


def test_by_topic_with_secondary_suppression(history_factory: sessionmaker[Session]) -> None:
    result = figure(history_factory, queries.by_topic)
    # Arrest (2) and no topic (1) are hidden; together 3, so the smallest shown
    # count is hidden too: entry requirements (5, before "Lost..." by name).
    assert result.rows == [
        ["Travel advice", 8, 0, 22, pytest.approx(8 / 21)],
        ["Entry requirements", H, 0, H, H],
        ["Lost stolen passport", 5, 0, 10, pytest.approx(5 / 21)],
        ["Arrest detention", H, H, H, H],
        [NO_TOPIC, H, 0, H, H],
    ]
    assert result.total == ["Total", 21, H, 46, 1.0]


def test_by_post_uses_the_first_ranked_post(history_factory: sessionmaker[Session]) -> None:
    result = figure(history_factory, queries.by_post)
    # Madrid, not Barcelona (rank 1); France has no post and joins "no country".
    assert result.rows == [
        [MADRID, 7, H, 18, pytest.approx(7 / 21)],
        [CANBERRA, 6, 0, 18, pytest.approx(6 / 21)],
        [DELHI, H, 0, H, H],  # 5, hidden so that "no post" (3) cannot be worked out
        [NO_POST, H, 0, H, H],
    ]


def test_by_country(history_factory: sessionmaker[Session]) -> None:
    counts = {
        label.split(" (")[0]: values[0]
        for label, values in rows(figure(history_factory, queries.by_country)).items()
    }
    assert counts == {"Spain": 7, "Australia": 6, "India": H, "France": H, queries.NO_COUNTRY: H}


def test_by_channel(history_factory: sessionmaker[Session]) -> None:
    result = figure(history_factory, queries.by_channel)
    # SMS 2 and WhatsApp 2 make 4 hidden: Telegram (6) is hidden as well.
    assert [row[:4] for row in result.rows] == [
        ["Web chat", 11, 0, 16],
        ["Telegram", H, 0, H],
        ["SMS", H, 0, H],
        ["WhatsApp", H, H, H],
    ]


def test_by_local_hour_across_clock_changes(history_factory: sessionmaker[Session]) -> None:
    result = figure(history_factory, queries.by_local_hour)
    hours = rows(result)
    # 10:00 Canberra after its change (3) + New Delhi 10:10 (5) = 8, hidden to
    # protect 12:00 (the 2 Madrid arrests, 12:15 summer time); 11:00 holds the
    # Madrid passports (11:15 winter time, 5) and Canberra before (11:30, 3).
    assert hours["10:00"] == [H, 0, H]
    assert hours["11:00"] == [8, 0, 19]
    assert hours["12:00"] == [H, H, H]
    assert all(
        values == [0, 0, 0]
        for hour, values in hours.items()
        if hour not in {"10:00", "11:00", "12:00"}
    )
    assert result.total == ["Total", 18, H, 41]  # France and no country have no clock


def test_service_summary(history_factory: sessionmaker[Session]) -> None:
    result = figure(history_factory, queries.service_summary)
    # 9 handoffs in 9 conversations of 21. Waits: 30 45 60 90 120 200 300 600
    # (France is still waiting) -> median rank ceil(8/2) = 4: 90 s. Replies:
    # 10 15 20 30 40 50 60 70 -> 30 s. Close: 500 600 ... 1200 -> 800 s.
    # Fewer than 20 values: no 95th percentile.
    assert result.rows == [
        [
            "All in range",
            21,
            9,
            pytest.approx(12 / 21),
            pytest.approx(9 / 21),
            90,
            H,
            30,
            H,
            800,
            H,
        ]
    ]


def test_service_by_post(history_factory: sessionmaker[Session]) -> None:
    result = figure(history_factory, queries.service_by_post)
    # Conversations 7 6 5 3: "no post" (3) hides New Delhi (5) too. Handed off
    # 7 1 0 1: Canberra (1) and no post (1) make 2, so Madrid's 7 is hidden.
    # Madrid's 7 waits 30..600 -> median 90 s; replies 10..70 -> 40 s; close 600..1200 -> 900 s.
    assert result.rows == [
        [MADRID, 7, H, H, 90, H, 40, H, 900, H],
        [CANBERRA, 6, H, H, H, H, H, H, H, H],  # one handoff: no median
        [DELHI, H, 0, H, None, None, None, None, None, None],
        [NO_POST, H, H, H, None, None, None, None, None, None],
    ]


def test_service_by_shift(history_factory: sessionmaker[Session]) -> None:
    result = figure(history_factory, queries.service_by_shift)
    # Queued 00:31 (Canberra, 1), 10:16 (Madrid, 7), 12:01 (France, 1) UTC:
    # 1 and 8 handoffs; the 1 hides the 8.
    assert result.rows == [
        ["00:00 to 08:00 UTC", H, H, H, H, H, H, H],
        ["08:00 to 16:00 UTC", H, 90, H, 40, H, 900, H],
        ["16:00 to 24:00 UTC", 0, None, None, None, None, None, None],
    ]


def test_handoff_reasons_and_outcomes(history_factory: sessionmaker[Session]) -> None:
    reasons = figure(history_factory, queries.handoff_reasons)
    # Urgent 2 is hidden, so the only other reason (7) is hidden too.
    assert [row[:2] for row in reasons.rows] == [
        ["Asked for a person, or the assistant passed it on", H],
        ["Urgent topic", H],
    ]
    assert reasons.total == ["Total", 9, 1.0]
    outcomes = figure(history_factory, queries.outcomes)
    # Resolved 6 (5 Madrid + Canberra), case opened 2, still open 1 (France).
    assert [row[:2] for row in outcomes.rows] == [
        ["Resolved: the citizen has what they needed", H],
        ["A consular case was opened", H],
        ["Still open", H],
    ]
    assert outcomes.total == ["Total", 9, 1.0]


def test_helpful_by_article(history_factory: sessionmaker[Session]) -> None:
    result = figure(history_factory, queries.helpful)
    # Travel advice 6 yes 0 no; passport 4 yes 1 no. The 1 hides its row's 4;
    # then the yes column's hidden 4 hides the travel advice 6.
    assert result.rows == [
        ["Travel advice", H, 0, 6, H],
        ["Lost stolen passport", H, H, 5, H],
    ]
    assert result.total == ["Total", H, H, 11, H]  # 1 "no" in all: hidden


def test_unanswered(history_factory: sessionmaker[Session]) -> None:
    by_reason = figure(history_factory, queries.unanswered_by_reason)
    assert by_reason.rows == [["Not understood", 5, 0.5], ["Out of scope", 5, 0.5]]
    by_topic = figure(history_factory, queries.unanswered_by_topic)
    assert by_topic.rows == [["Entry requirements", 5, 0.5], ["Lost stolen passport", 5, 0.5]]


def test_past_review_by(history_factory: sessionmaker[Session]) -> None:
    with session_scope(history_factory) as session:
        result = queries.past_review_by(session, RANGE, today=TODAY)
    # Only the passport article's review-by date (1 January) has passed: 97 days ago.
    assert [row[0] for row in result.rows] == ["Lost stolen passport"]
    assert result.rows[0][1:] == [
        "About lost-stolen-passport",
        RANGE.start.replace(month=1, day=1),
        97,
    ]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        # Spain on web chat: the 5 Madrid passports (8 April is after the range).
        ({"country": "ES", "channel": "webchat"}, {"2026-03-27": [5, 0, 10]}),
        # Travel advice: Canberra 3 + 3 and France 2, all hidden by day.
        (
            {"topic": "travel-advice"},
            {"2026-03-28": [H, 0, H], "2026-04-02": [H, 0, H], "2026-04-06": [H, 0, H]},
        ),
        ({"channel": "whatsapp"}, {"2026-03-30": [H, H, H]}),
    ],
)
def test_filters_narrow_every_figure(
    history_factory: sessionmaker[Session], filters: dict[str, str], expected: dict[str, Any]
) -> None:
    narrowed = replace(RANGE, **filters)
    days = rows(figure(history_factory, queries.over_time, narrowed))
    for day, values in expected.items():
        assert days[day] == values
    nonzero = {day for day, values in days.items() if values[0] != 0}
    assert nonzero == set(expected)


def test_service_filters_by_channel_and_country(history_factory: sessionmaker[Session]) -> None:
    spain = figure(history_factory, queries.service_summary, replace(RANGE, country="ES"))
    assert spain.rows[0][1:3] == [7, 7]  # every Spanish conversation went to an officer
    assert spain.rows[0][5] == 90
    telegram = figure(history_factory, queries.service_summary, replace(RANGE, channel="telegram"))
    assert telegram.rows[0][1:3] == [6, H]  # Canberra: 1 of 6 handed off
