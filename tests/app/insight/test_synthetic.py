"""The synthetic history: marked, shaped, reproducible, and never mixed into real data."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.catalogue import URGENT_SLUGS
from bot.db.models import (
    Conversation,
    Handoff,
    Message,
    Officer,
    Post,
    Shift,
    UnansweredQuestion,
)
from bot.db.session import make_engine, session_scope
from bot.insight import synthetic
from bot.insight.synthetic import GenerateError, Plan

END = datetime(2026, 11, 1, tzinfo=UTC)


def plan(**overrides: int) -> Plan:
    values = {"conversations": 2_000, "posts": 12, "days": 28, "seed": 7, "batch": 500}
    values.update(overrides)
    return Plan(end=END, **values)


def test_generates_a_marked_realistic_history(
    database_url: str, session_factory: sessionmaker[Session]
) -> None:
    engine = make_engine(database_url)
    lines: list[str] = []
    report = synthetic.generate(engine, plan(), progress=lines.append)
    engine.dispose()
    assert report.conversations == 2_000
    assert len(lines) == 4 and lines[-1].startswith("conversations 2,000/2,000 (100%)")
    with session_scope(session_factory) as session:
        conversations = session.scalars(select(Conversation)).all()
        assert all(c.is_synthetic for c in conversations)
        assert all(plan().start <= c.created_at.replace(tzinfo=UTC) < END for c in conversations)
        # Each conversation's message_count is its messages, whoever wrote it.
        messages = session.scalar(select(func.count()).select_from(Message))
        assert sum(c.message_count for c in conversations) == messages == report.messages
        assert {m.text for m in session.scalars(select(Message).limit(50))} == {
            synthetic.SYNTHETIC_TEXT
        }
        urgent = [c for c in conversations if c.topic in URGENT_SLUGS]
        assert 0.04 < len(urgent) / len(conversations) < 0.16
        assert all(c.priority > 0 for c in urgent)
        handed = set(session.scalars(select(Handoff.conversation_id)))
        assert {c.id for c in urgent} <= handed  # every urgent case reaches an officer
        # The triggers time every handoff and copy its channel, as for real ones.
        by_id = {c.id: c for c in conversations}
        for handoff in session.scalars(select(Handoff)):
            assert handoff.channel == by_id[handoff.conversation_id].channel
            assert (handoff.wait_seconds is None) == (handoff.assigned_at is None)
            assert (handoff.close_seconds is None) == (handoff.closed_at is None)
            assert not handoff.is_repeat
        channels = Counter(c.channel for c in conversations)
        assert channels.most_common(1)[0][0] == "webchat"
        posts = session.scalars(select(Post)).all()
        assert len(posts) == 12
        assert all(p.is_sample and p.name.endswith("(synthetic)") for p in posts)
        officers = session.scalars(select(Officer)).all()
        assert officers and not any(o.active for o in officers)  # never on the real rota
        assert session.scalar(select(func.count()).select_from(Shift)) == 5 * len(officers)
        assert session.scalar(select(func.count()).select_from(UnansweredQuestion)) > 0


def test_same_seed_same_history(tmp_path: Path) -> None:
    from bot.db.migrate import upgrade_to_head

    histories = []
    for name in ("a", "b"):
        url = f"sqlite:///{tmp_path / name}.db"
        upgrade_to_head(url)
        engine = make_engine(url)
        synthetic.generate(engine, plan(conversations=300))
        with engine.connect() as connection:
            histories.append(
                connection.execute(
                    select(Conversation.id, Conversation.topic, Conversation.created_at).order_by(
                        Conversation.id
                    )
                ).all()
            )
        engine.dispose()
    assert histories[0] == histories[1]


def test_refuses_a_database_with_real_conversations(
    database_url: str, session_factory: sessionmaker[Session]
) -> None:
    with session_scope(session_factory) as session:
        session.add(Conversation(channel="webchat", external_id="a-real-citizen"))
    engine = make_engine(database_url)
    with pytest.raises(GenerateError, match="1 real conversations"):
        synthetic.generate(engine, plan(conversations=10))
    report = synthetic.generate(engine, plan(conversations=10), allow_real_data=True)
    assert report.conversations == 10
    removed = synthetic.remove_synthetic(engine)
    engine.dispose()
    assert removed == 10
    with session_scope(session_factory) as session:
        left = session.scalars(select(Conversation.external_id)).all()
        assert left == ["a-real-citizen"]
        assert session.scalar(select(func.count()).select_from(Officer)) == 0


def test_command_line(database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = synthetic.main(
        [
            "generate",
            "--conversations", "50",
            "--posts", "5",
            "--days", "7",
            "--end", "2026-10-31",
            "--database-url", database_url,
        ]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0
    assert "conversations: 50" in captured.out
    assert "conversations 50/50 (100%)" in captured.err
    assert synthetic.main(["generate", "--conversations", "5", "--database-url", database_url]) == 0


def test_refuses_a_database_that_is_not_migrated(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(GenerateError, match="not migrated"):
        synthetic.generate(engine, plan(conversations=10))
    engine.dispose()
