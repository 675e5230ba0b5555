"""The guidance workflow: every transition, second-person approval, schedules, expiry, rollback."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.db.models import AuditEvent, GuidanceRevision, OfficerRole, RevisionStatus
from bot.db.session import session_scope
from bot.guidance import workflow
from bot.guidance.store import RevisionDraft, live_revision, served_revision
from bot.guidance.workflow import Person

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
EDITOR = Person("staff:editor@example.gov.uk", OfficerRole.EDITOR)
OTHER_EDITOR = Person("staff:other@example.gov.uk", OfficerRole.EDITOR)
REVIEWER = Person("staff:reviewer@example.gov.uk", OfficerRole.REVIEWER)
SECOND_REVIEWER = Person("staff:second@example.gov.uk", OfficerRole.REVIEWER)
ADMIN = Person("staff:admin@example.gov.uk", OfficerRole.ADMIN)


def text(body: str, *, title: str = "Lost or stolen passport") -> RevisionDraft:
    return RevisionDraft(
        title=title,
        body=body,
        source_url="https://www.gov.uk/emergency-travel-document",
        last_reviewed=NOW.date(),
        review_by=date(2027, 6, 1),
        example_questions=("I lost my passport",),
    )


Work = Callable[[Session], Any]


def run(factory: sessionmaker[Session], work: Work) -> Any:
    with session_scope(factory) as session:
        return work(session)


@pytest.fixture
def article(session_factory: sessionmaker[Session]) -> int:
    """A generic lost-passport article with "Version one." published (approved by a reviewer)."""

    def make(session: Session) -> int:
        first = workflow.create_article(
            session,
            topic="lost-stolen-passport",
            country=None,
            draft=text("Version one."),
            change_note="First version",
            by=EDITOR,
        )
        workflow.submit(session, revision_id=first.id, by=EDITOR, now=NOW)
        workflow.approve(session, revision_id=first.id, by=REVIEWER, now=NOW)
        return first.article_id

    return int(run(session_factory, make))


def served(factory: sessionmaker[Session], now: datetime, country: str | None = None) -> str | None:
    def read(session: Session) -> str | None:
        found = served_revision(
            session=session, topic="lost-stolen-passport", country=country, now=now
        )
        return found.body if found else None

    return run(factory, read)  # type: ignore[no-any-return]


def new_version(
    factory: sessionmaker[Session], article_id: int, body: str, *, by: Person = EDITOR
) -> int:
    """A draft with ``body``, submitted for review; returns its id."""

    def work(session: Session) -> int:
        draft = workflow.start_draft(session, article_id=article_id, by=by, now=NOW)
        workflow.edit_draft(
            session, revision_id=draft.id, draft=text(body), change_note="Update", by=by
        )
        workflow.submit(session, revision_id=draft.id, by=by, now=NOW)
        return draft.id

    return int(run(factory, work))


def actions(factory: sessionmaker[Session]) -> list[str]:
    with factory() as session:
        return list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def status_of(factory: sessionmaker[Session], revision_id: int) -> RevisionStatus:
    with factory() as session:
        return session.get_one(GuidanceRevision, revision_id).status


# -- transitions ---------------------------------------------------------------------------


def test_the_whole_way_from_draft_to_publication_is_audited(
    session_factory: sessionmaker[Session], article: int
) -> None:
    assert served(session_factory, NOW) == "Version one."
    revision_id = new_version(session_factory, article, "Version two.")
    assert status_of(session_factory, revision_id) == RevisionStatus.IN_REVIEW
    assert served(session_factory, NOW) == "Version one."  # in review is never served
    run(
        session_factory,
        lambda s: workflow.approve(
            s, revision_id=revision_id, by=REVIEWER, note="Checked", now=NOW
        ),
    )
    assert served(session_factory, NOW) == "Version two."
    with session_factory() as session:
        revisions = session.scalars(
            select(GuidanceRevision)
            .where(GuidanceRevision.article_id == article)
            .order_by(GuidanceRevision.number)
        ).all()
        assert [r.status for r in revisions] == [RevisionStatus.ARCHIVED, RevisionStatus.PUBLISHED]
        latest = revisions[-1]
        assert (latest.author, latest.submitted_by, latest.reviewer) == (
            EDITOR.actor,
            EDITOR.actor,
            REVIEWER.actor,
        )
        assert latest.review_note == "Checked"
    assert actions(session_factory) == [
        "guidance.article_created",
        "guidance.submitted",
        "guidance.approved",
        "guidance.published",
        "guidance.draft_started",
        "guidance.draft_edited",
        "guidance.submitted",
        "guidance.approved",
        "guidance.published",
    ]


def test_a_new_draft_copies_the_served_text_and_is_reused(
    session_factory: sessionmaker[Session], article: int
) -> None:
    def work(session: Session) -> tuple[int, int, str]:
        first = workflow.start_draft(session, article_id=article, by=EDITOR, now=NOW)
        again = workflow.start_draft(session, article_id=article, by=OTHER_EDITOR, now=NOW)
        return first.id, again.id, first.body

    first, again, body = run(session_factory, work)
    assert first == again
    assert body == "Version one."


def test_only_drafts_can_be_edited(session_factory: sessionmaker[Session], article: int) -> None:
    revision_id = new_version(session_factory, article, "Version two.")
    with pytest.raises(workflow.Conflict, match="Only a draft"):
        run(
            session_factory,
            lambda s: workflow.edit_draft(
                s, revision_id=revision_id, draft=text("Sneaky"), change_note="x", by=EDITOR
            ),
        )


def test_a_draft_cannot_start_while_one_is_in_review(
    session_factory: sessionmaker[Session], article: int
) -> None:
    new_version(session_factory, article, "Version two.")
    with pytest.raises(workflow.Conflict, match="waiting for review"):
        run(session_factory, lambda s: workflow.start_draft(s, article_id=article, by=EDITOR))


def test_send_back_returns_a_draft_with_the_note(
    session_factory: sessionmaker[Session], article: int
) -> None:
    revision_id = new_version(session_factory, article, "Version two.")
    with pytest.raises(workflow.Invalid):
        run(
            session_factory,
            lambda s: workflow.send_back(s, revision_id=revision_id, by=REVIEWER, note=" "),
        )
    run(
        session_factory,
        lambda s: workflow.send_back(
            s, revision_id=revision_id, by=REVIEWER, note="Add the fee", now=NOW
        ),
    )
    with session_factory() as session:
        revision = session.get_one(GuidanceRevision, revision_id)
        assert (revision.status, revision.review_note) == (RevisionStatus.DRAFT, "Add the fee")
    assert actions(session_factory)[-1] == "guidance.sent_back"


def test_the_author_withdraws_a_submission(
    session_factory: sessionmaker[Session], article: int
) -> None:
    revision_id = new_version(session_factory, article, "Version two.")
    with pytest.raises(workflow.NotAllowed):
        run(
            session_factory,
            lambda s: workflow.withdraw(s, revision_id=revision_id, by=OTHER_EDITOR),
        )
    run(session_factory, lambda s: workflow.withdraw(s, revision_id=revision_id, by=EDITOR))
    assert status_of(session_factory, revision_id) == RevisionStatus.DRAFT


def test_a_reviewer_withdraws_live_guidance_and_nothing_older_comes_back(
    session_factory: sessionmaker[Session], article: int
) -> None:
    revision_id = new_version(session_factory, article, "Version two.")
    run(
        session_factory,
        lambda s: workflow.approve(s, revision_id=revision_id, by=REVIEWER, now=NOW),
    )
    later = NOW + timedelta(hours=1)
    with pytest.raises(workflow.NotAllowed):
        run(
            session_factory,
            lambda s: workflow.withdraw(s, revision_id=revision_id, by=EDITOR, now=later),
        )
    run(
        session_factory,
        lambda s: workflow.withdraw(s, revision_id=revision_id, by=REVIEWER, now=later),
    )
    assert served(session_factory, later) is None


# -- second person -------------------------------------------------------------------------


def test_an_editor_cannot_approve_at_all(
    session_factory: sessionmaker[Session], article: int
) -> None:
    revision_id = new_version(session_factory, article, "Version two.", by=OTHER_EDITOR)
    with pytest.raises(workflow.NotAllowed, match="Only a reviewer"):
        run(
            session_factory,
            lambda s: workflow.approve(s, revision_id=revision_id, by=EDITOR, now=NOW),
        )


@pytest.mark.parametrize("who", [REVIEWER, ADMIN])
def test_nobody_approves_their_own_change(
    session_factory: sessionmaker[Session], article: int, who: Person
) -> None:
    revision_id = new_version(session_factory, article, "My own change.", by=who)
    with pytest.raises(workflow.NotAllowed, match="you wrote or submitted"):
        run(
            session_factory,
            lambda s: workflow.approve(s, revision_id=revision_id, by=who, now=NOW),
        )
    assert status_of(session_factory, revision_id) == RevisionStatus.IN_REVIEW


def test_the_submitter_cannot_approve_what_someone_else_wrote(
    session_factory: sessionmaker[Session], article: int
) -> None:
    def work(session: Session) -> int:
        draft = workflow.start_draft(session, article_id=article, by=EDITOR, now=NOW)
        workflow.edit_draft(
            session, revision_id=draft.id, draft=text("Two"), change_note="Two", by=EDITOR
        )
        workflow.submit(session, revision_id=draft.id, by=REVIEWER, now=NOW)
        return draft.id

    revision_id = run(session_factory, work)
    with pytest.raises(workflow.NotAllowed):
        run(
            session_factory,
            lambda s: workflow.approve(s, revision_id=revision_id, by=REVIEWER, now=NOW),
        )
    run(
        session_factory,
        lambda s: workflow.approve(s, revision_id=revision_id, by=SECOND_REVIEWER, now=NOW),
    )
    assert served(session_factory, NOW) == "Two"


def test_two_reviewers_approving_at_once_one_wins(
    session_factory: sessionmaker[Session], article: int
) -> None:
    revision_id = new_version(session_factory, article, "Version two.")
    # Both load the revision in review before either commits.
    first = session_factory()
    second = session_factory()
    try:
        assert first.get_one(GuidanceRevision, revision_id).status == RevisionStatus.IN_REVIEW
        assert second.get_one(GuidanceRevision, revision_id).status == RevisionStatus.IN_REVIEW
        workflow.approve(first, revision_id=revision_id, by=REVIEWER, now=NOW)
        first.commit()
        with pytest.raises(workflow.Conflict, match="someone acted on it first"):
            workflow.approve(second, revision_id=revision_id, by=SECOND_REVIEWER, now=NOW)
        second.rollback()
    finally:
        first.close()
        second.close()
    with session_factory() as session:
        assert session.get_one(GuidanceRevision, revision_id).reviewer == REVIEWER.actor
    assert actions(session_factory).count("guidance.approved") == 2  # the first article's + one


def test_concurrent_approvals_from_threads_publish_once(
    session_factory: sessionmaker[Session], article: int
) -> None:
    revision_id = new_version(session_factory, article, "Version two.")
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def approve(by: Person) -> None:
        barrier.wait()
        try:
            run(
                session_factory,
                lambda s: workflow.approve(s, revision_id=revision_id, by=by, now=NOW),
            )
            outcomes.append("won")
        except workflow.Conflict:
            outcomes.append("lost")
        except Exception as exc:  # SQLite may refuse the second writer outright
            outcomes.append(f"lost:{type(exc).__name__}")

    threads = [threading.Thread(target=approve, args=(p,)) for p in (REVIEWER, SECOND_REVIEWER)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("won") == 1
    assert actions(session_factory).count("guidance.approved") == 2


# -- scheduling and expiry -----------------------------------------------------------------


def test_a_scheduled_publication_starts_at_its_time(
    session_factory: sessionmaker[Session], article: int
) -> None:
    revision_id = new_version(session_factory, article, "From tomorrow.")
    tomorrow = NOW + timedelta(days=1)
    run(
        session_factory,
        lambda s: workflow.approve(
            s, revision_id=revision_id, by=REVIEWER, publish_at=tomorrow, now=NOW
        ),
    )
    assert served(session_factory, NOW) == "Version one."
    assert served(session_factory, tomorrow - timedelta(seconds=1)) == "Version one."
    assert served(session_factory, tomorrow) == "From tomorrow."
    assert "guidance.published" not in actions(session_factory)[-1:]


def test_an_expired_article_serves_nothing_not_the_older_text(
    session_factory: sessionmaker[Session], article: int
) -> None:
    revision_id = new_version(session_factory, article, "Until Friday.")
    friday = NOW + timedelta(days=3)
    run(
        session_factory,
        lambda s: workflow.approve(
            s, revision_id=revision_id, by=REVIEWER, expires_at=friday, now=NOW
        ),
    )
    assert served(session_factory, friday - timedelta(minutes=1)) == "Until Friday."
    assert served(session_factory, friday) is None


def test_an_expired_country_article_falls_back_to_the_generic_one(
    session_factory: sessionmaker[Session], article: int
) -> None:
    def make(session: Session) -> int:
        spanish = workflow.create_article(
            session,
            topic="lost-stolen-passport",
            country="ES",
            draft=text("Go to the Policia Nacional."),
            change_note="Spain",
            by=EDITOR,
        )
        workflow.submit(session, revision_id=spanish.id, by=EDITOR, now=NOW)
        workflow.approve(
            session,
            revision_id=spanish.id,
            by=REVIEWER,
            expires_at=NOW + timedelta(days=1),
            now=NOW,
        )
        return spanish.id

    run(session_factory, make)
    assert served(session_factory, NOW, "ES") == "Go to the Policia Nacional."
    assert served(session_factory, NOW + timedelta(days=2), "ES") == "Version one."


@pytest.mark.parametrize(
    ("publish_at", "expires_at", "field"),
    [
        (NOW - timedelta(minutes=1), None, "publish_at"),
        (None, NOW, "expires_at"),
        (NOW + timedelta(days=2), NOW + timedelta(days=1), "expires_at"),
    ],
)
def test_schedules_must_make_sense(
    session_factory: sessionmaker[Session],
    article: int,
    publish_at: datetime | None,
    expires_at: datetime | None,
    field: str,
) -> None:
    revision_id = new_version(session_factory, article, "Version two.")
    with pytest.raises(workflow.Invalid) as raised:
        run(
            session_factory,
            lambda s: workflow.approve(
                s,
                revision_id=revision_id,
                by=REVIEWER,
                publish_at=publish_at,
                expires_at=expires_at,
                now=NOW,
            ),
        )
    assert field in raised.value.errors


# -- rollback ------------------------------------------------------------------------------


def test_rolling_back_to_a_published_text_publishes_it_at_once(
    session_factory: sessionmaker[Session], article: int
) -> None:
    revision_id = new_version(session_factory, article, "Version two.")
    run(
        session_factory,
        lambda s: workflow.approve(s, revision_id=revision_id, by=REVIEWER, now=NOW),
    )

    def back(session: Session) -> GuidanceRevision:
        first = session.scalars(
            select(GuidanceRevision).where(
                GuidanceRevision.article_id == article, GuidanceRevision.number == 1
            )
        ).one()
        return workflow.rollback(
            session, article_id=article, to_revision_id=first.id, by=OTHER_EDITOR, now=NOW
        )

    copy = run(session_factory, back)
    assert served(session_factory, NOW) == "Version one."
    with session_factory() as session:
        restored = session.get_one(GuidanceRevision, copy.id)
        assert (restored.number, restored.restored_from) == (3, 1)
        assert restored.status == RevisionStatus.PUBLISHED
        assert (restored.author, restored.reviewer) == (OTHER_EDITOR.actor, REVIEWER.actor)
        assert restored.change_note == "Rolled back to revision 1"
    with session_factory() as session:
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "guidance.rolled_back")
        ).one()
        assert event.actor == OTHER_EDITOR.actor
        assert event.details["original_approver"] == REVIEWER.actor


def test_rolling_back_to_an_unpublished_text_waits_for_the_open_change(
    session_factory: sessionmaker[Session], article: int
) -> None:
    revision_id = new_version(session_factory, article, "Never approved.")
    run(
        session_factory,
        lambda s: workflow.send_back(s, revision_id=revision_id, by=REVIEWER, note="No"),
    )
    with pytest.raises(workflow.Conflict, match="already a change under way"):
        run(
            session_factory,
            lambda s: workflow.rollback(
                s, article_id=article, to_revision_id=revision_id, by=EDITOR, now=NOW
            ),
        )


def test_rolling_back_to_a_discarded_draft_makes_a_new_draft(
    session_factory: sessionmaker[Session], article: int
) -> None:
    abandoned = new_version(session_factory, article, "Abandoned.")
    run(
        session_factory,
        lambda s: workflow.send_back(s, revision_id=abandoned, by=REVIEWER, note="No"),
    )
    run(session_factory, lambda s: workflow.discard(s, revision_id=abandoned, by=EDITOR))
    assert status_of(session_factory, abandoned) == RevisionStatus.ARCHIVED
    copy = run(
        session_factory,
        lambda s: workflow.rollback(
            s, article_id=article, to_revision_id=abandoned, by=EDITOR, now=NOW
        ),
    )
    with session_factory() as session:
        restored = session.get_one(GuidanceRevision, copy.id)
        assert (restored.status, restored.body) == (RevisionStatus.DRAFT, "Abandoned.")
        assert restored.restored_from == 2
    assert served(session_factory, NOW) == "Version one."
    assert "guidance.draft_discarded" in actions(session_factory)


def test_live_revision_matches_what_is_served(
    session_factory: sessionmaker[Session], article: int
) -> None:
    with session_factory() as session:
        live = live_revision(session=session, article_id=article, now=NOW)
        assert live is not None and live.body == "Version one."


# -- validation and diff -------------------------------------------------------------------


def test_validation_reports_every_problem_clearly() -> None:
    checked = workflow.check(
        workflow.Fields(
            title=" ",
            body="",
            source_url="http://www.gov.uk/x",
            review_by="2026-01-01",
            example_questions="",
            change_note="",
        ),
        today=NOW.date(),
    )
    assert checked.draft is None
    assert checked.errors == {
        "title": "Enter a title",
        "body": "Enter the guidance text",
        "source_url": "Enter a source URL that starts with https://, like https://www.gov.uk/...",
        "review_by": "The review-by date must be in the future",
        "change_note": "Say what you changed and why",
    }


def test_too_long_a_body_is_refused() -> None:
    checked = workflow.check(
        workflow.Fields(
            title="T",
            body="x" * (workflow.MAX_BODY_LENGTH + 1),
            source_url="https://www.gov.uk/x",
            review_by="2027-01-01",
            change_note="n",
        ),
        today=NOW.date(),
    )
    assert "body" in checked.errors


def test_example_questions_are_trimmed_and_de_duplicated() -> None:
    checked = workflow.check(
        workflow.Fields(
            title="  Lost   passport ",
            body="Text",
            source_url="https://www.gov.uk/x",
            review_by="2027-01-01",
            example_questions="  I lost my passport \n\nI LOST MY PASSPORT\n  stolen   passport",
            change_note="Why",
        ),
        today=NOW.date(),
    )
    assert checked.draft is not None
    assert checked.draft.title == "Lost passport"
    assert checked.draft.example_questions == ("I lost my passport", "stolen passport")


def test_a_new_article_needs_a_catalogue_topic_and_a_real_country() -> None:
    assert workflow.check_article("lost-stolen-passport", "es")[:2] == (
        "lost-stolen-passport",
        "ES",
    )
    _, _, errors = workflow.check_article("not-a-topic", "XX")
    assert set(errors) == {"topic", "country"}


def test_diff_shows_changed_fields_line_by_line(
    session_factory: sessionmaker[Session], article: int
) -> None:
    revision_id = new_version(session_factory, article, "Version one.\nA new line.")
    with session_factory() as session:
        new = session.get_one(GuidanceRevision, revision_id)
        old = session.scalars(
            select(GuidanceRevision).where(
                GuidanceRevision.article_id == article, GuidanceRevision.number == 1
            )
        ).one()
        fields = {field.name: field for field in workflow.diff(old, new)}
    assert not fields["title"].changed
    assert fields["body"].changed
    assert [(line.kind, line.text) for line in fields["body"].lines] == [
        ("same", "Version one."),
        ("added", "A new line."),
    ]
