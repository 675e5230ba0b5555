"""Unanswered questions: normalised, grouped deterministically, resolved once."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.conversations import store
from bot.db.models import (
    GuidanceRevision,
    OfficerRole,
    RevisionStatus,
    UnansweredQuestion,
    UnansweredReason,
)
from bot.db.session import session_scope
from bot.guidance import unanswered, workflow
from bot.guidance.store import RevisionDraft, add_revision, create_article, publish_revision
from bot.guidance.unanswered import Question, group_questions, normalise

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def question(qid: int, text: str, *, minutes: int = 0, channel: str = "webchat") -> Question:
    return Question(
        id=qid,
        text=text,
        channel=channel,
        country="FR" if qid % 2 else None,
        reason="out_of_scope",
        created_at=T0 + timedelta(minutes=minutes),
    )


@pytest.mark.parametrize(
    ("text", "stems"),
    [
        ("How do I renew my Passport?!", {"renew", "passport"}),
        ("Can I bring my dogs to Spain", {"bring", "dog", "spain"}),
        ("Embassies opening hours", {"embassy", "open", "hour"}),
        ("my address changed", {"address", "chang"}),
        ("what is it?", set()),
    ],
)
def test_normalise_drops_case_punctuation_stop_words_and_suffixes(
    text: str, stems: set[str]
) -> None:
    assert normalise(text) == frozenset(stems)


def test_similar_questions_share_a_group_and_the_biggest_group_comes_first() -> None:
    questions = [
        question(1, "Can I bring my dog to Spain?", minutes=1),
        question(2, "can i bring my dogs to spain", minutes=2),
        question(3, "What are the embassy opening hours", minutes=3),
        question(4, "bringing my dog to spain by car", minutes=4),
        question(5, "Is the weather nice in Lisbon", minutes=5, channel="telegram"),
    ]
    groups = group_questions(questions)
    assert [group.ids for group in groups] == [[1, 2, 4], [5], [3]]
    dogs = groups[0]
    assert dogs.count == 3 and dogs.countries == ["FR"] and dogs.channels == ["webchat"]
    # Two share one wording (by stems); the newer of those two stands for the group.
    assert dogs.representative == "can i bring my dogs to spain"
    assert dogs.examples[0] == dogs.representative and len(dogs.examples) == 3


def test_grouping_does_not_depend_on_the_order_rows_arrive_in() -> None:
    texts = [
        "lost my dog in the airport",
        "dog lost at airport",
        "how to renew a passport from abroad",
        "renew passport abroad",
        "renewing my passport abroad please",
        "hello",
        "hi",
    ]
    questions = [question(n, text, minutes=n) for n, text in enumerate(texts, start=1)]
    expected = [group.ids for group in group_questions(questions)]
    shuffled = questions[:]
    random.Random(7).shuffle(shuffled)
    assert [group.ids for group in group_questions(shuffled)] == expected
    assert expected[0] == [3, 4, 5]


def test_merge_examples_appends_only_new_texts() -> None:
    merged = unanswered.merge_examples(["Lost my passport"], ["lost  my passport", " new one "])
    assert merged == ["Lost my passport", "new one"]


def add_questions(
    factory: sessionmaker[Session], texts: list[str], *, days_ago: int = 0
) -> list[int]:
    ids = []
    with session_scope(factory) as session:
        conversation = store.create_conversation(session=session, channel="webchat")
        for text in texts:
            message, _new = store.store_inbound(
                session=session, conversation_id=conversation.id, text=text, provider_id=None
            )
            row = UnansweredQuestion(
                message_id=message.id,
                conversation_id=conversation.id,
                channel="webchat",
                country="ES",
                reason=UnansweredReason.MISUNDERSTOOD,
                text=text,
                created_at=datetime.now(UTC) - timedelta(days=days_ago),
            )
            session.add(row)
            session.flush()
            ids.append(row.id)
    return ids


def test_recent_unresolved_reads_the_window_newest_first_up_to_the_limit(
    session_factory: sessionmaker[Session],
) -> None:
    old = add_questions(session_factory, ["an old question"], days_ago=200)
    recent = add_questions(session_factory, ["first", "second", "third"])
    with session_factory() as session:
        found = unanswered.recent_unresolved(session=session, limit=2)
        everything = unanswered.recent_unresolved(session=session, days=365)
    assert [q.id for q in found] == [recent[2], recent[1]]
    assert found[0].reason == "misunderstood" and found[0].country == "ES"
    assert old[0] in {q.id for q in everything}


def test_resolve_marks_only_open_questions_once(session_factory: sessionmaker[Session]) -> None:
    ids = add_questions(session_factory, ["one", "two", "three"])
    with session_scope(session_factory) as session:
        first = unanswered.resolve(
            session=session, ids=ids[:2], actor="staff:a@x", resolution="dismissed"
        )
    with session_scope(session_factory) as session:
        second = unanswered.resolve(
            session=session, ids=ids, actor="staff:b@x", resolution="new_article"
        )
    assert (first, second) == (2, 1)
    with session_factory() as session:
        rows = {row.id: row for row in session.scalars(select(UnansweredQuestion))}
        assert rows[ids[0]].resolved_by == "staff:a@x" and rows[ids[0]].resolution == "dismissed"
        assert rows[ids[2]].resolved_by == "staff:b@x" and rows[ids[2]].resolved_at is not None
        assert unanswered.recent_unresolved(session=session) == []
    with pytest.raises(ValueError), session_scope(session_factory) as session:
        unanswered.resolve(session=session, ids=ids, actor="x", resolution="deleted")


def published_article(factory: sessionmaker[Session], questions: list[str]) -> int:
    with session_scope(factory) as session:
        article = create_article(session=session, topic="kidnap", country=None)
        draft = RevisionDraft(
            title="Kidnap",
            body="Call the police.",
            source_url="https://www.gov.uk/x",
            last_reviewed=date(2026, 1, 1),
            review_by=date(2099, 1, 1),
            example_questions=tuple(questions),
        )
        revision = add_revision(session=session, article=article, draft=draft, author="seed")
        publish_revision(session=session, revision=revision, reviewer="seed")
        return article.id


EDITOR = workflow.Person("staff:e@example.gov.uk", OfficerRole.EDITOR)


def test_adding_to_an_article_leaves_out_long_texts_and_keeps_the_live_text(
    session_factory: sessionmaker[Session],
) -> None:
    article_id = published_article(session_factory, ["my son was taken"])
    ids = add_questions(session_factory, ["My son was  taken", "x" * 201, "kidnapped in Lagos"])
    with session_scope(session_factory) as session:
        added = unanswered.add_to_article(
            session=session, article_id=article_id, ids=ids, by=EDITOR
        )
    assert (added.added, added.too_long, added.resolved) == (1, 1, 3)
    with session_factory() as session:
        revisions = session.scalars(select(GuidanceRevision).order_by(GuidanceRevision.number))
        live, draft = list(revisions)
        assert live.example_questions == ["my son was taken"]
        assert draft.status == RevisionStatus.DRAFT and draft.id == added.revision_id
        assert draft.example_questions == ["my son was taken", "kidnapped in Lagos"]
        assert draft.change_note == "Added 1 example questions from unanswered questions"


def test_adding_beyond_the_limit_of_example_questions_changes_nothing(
    session_factory: sessionmaker[Session],
) -> None:
    full = [f"question number {n}" for n in range(workflow.MAX_QUESTIONS)]
    article_id = published_article(session_factory, full)
    ids = add_questions(session_factory, ["one more"])
    with pytest.raises(workflow.Invalid), session_scope(session_factory) as session:
        unanswered.add_to_article(session=session, article_id=article_id, ids=ids, by=EDITOR)
    with session_factory() as session:
        assert len(session.scalars(select(GuidanceRevision)).all()) == 1
        assert unanswered.recent_unresolved(session=session)[0].id == ids[0]
