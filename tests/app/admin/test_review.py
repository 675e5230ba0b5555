"""The review queue: a second person approves or sends back; nobody approves their own change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from bot.db.models import GuidanceRevision, RevisionStatus
from tests.app.admin.conftest import Browser, revision_ids, token
from tests.app.admin.test_articles import open_draft, save, served
from tests.app.console.conftest import Account


@pytest.fixture
def submitted(
    browser: Browser, editor: Account, lost_passport: int, session_factory: sessionmaker[Session]
) -> int:
    """The editor's change to the lost-passport article, waiting for review; its revision id."""
    staff = browser(editor)
    response = save(staff, open_draft(staff, lost_passport), body="New text.", action="submit")
    assert response.status_code == 303
    return revision_ids(session_factory, lost_passport)[-1]


def approve(staff: TestClient, revision_id: int, **data: str) -> TestClient:
    return staff.post(  # type: ignore[return-value]
        f"/admin/review/{revision_id}/approve",
        data={"csrf_token": token(staff, "/admin/review"), **data},
        follow_redirects=False,
    )


def status(factory: sessionmaker[Session], revision_id: int) -> RevisionStatus:
    with factory() as session:
        return session.get_one(GuidanceRevision, revision_id).status


def test_a_reviewer_approves_and_the_next_citizen_gets_the_new_text(
    browser: Browser, reviewer: Account, client: TestClient, submitted: int
) -> None:
    staff = browser(reviewer)
    queue = staff.get("/admin/review")
    assert f'action="/admin/review/{submitted}/approve"' in queue.text
    assert '<span class="govuk-visually-hidden">Added: </span>New text.' in queue.text
    response = approve(staff, submitted, review_note="Reads well")
    assert response.headers["location"] == "/admin/review?done=approved"
    assert served(client) == "New text."
    assert "Nothing is waiting for review" in staff.get(response.headers["location"]).text


def test_an_editor_sees_no_approve_button_and_the_server_refuses_anyway(
    browser: Browser,
    editor: Account,
    client: TestClient,
    submitted: int,
    session_factory: sessionmaker[Session],
) -> None:
    staff = browser(editor)
    queue = staff.get("/admin/review")
    assert "New text." in queue.text  # editors may read the queue
    assert f"/admin/review/{submitted}/approve" not in queue.text
    refused = approve(staff, submitted)
    assert refused.status_code == 403
    assert status(session_factory, submitted) == RevisionStatus.IN_REVIEW
    assert served(client).startswith("Report it to the police")


def test_a_reviewer_cannot_approve_their_own_change(
    browser: Browser, reviewer: Account, lost_passport: int, session_factory: sessionmaker[Session]
) -> None:
    staff = browser(reviewer)
    save(staff, open_draft(staff, lost_passport), body="My own words.", action="submit")
    own = revision_ids(session_factory, lost_passport)[-1]
    queue = staff.get("/admin/review")
    assert f"/admin/review/{own}/approve" not in queue.text
    assert "You wrote or submitted this change" in queue.text
    refused = approve(staff, own)
    assert refused.status_code == 403
    assert "You cannot approve a change you wrote or submitted" in refused.text
    assert status(session_factory, own) == RevisionStatus.IN_REVIEW


def test_an_admin_approves_someone_elses_change(
    browser: Browser, admin: Account, client: TestClient, submitted: int
) -> None:
    assert approve(browser(admin), submitted).status_code == 303
    assert served(client) == "New text."


def test_the_second_approval_is_told_someone_acted_first(
    browser: Browser, reviewer: Account, admin: Account, submitted: int
) -> None:
    first, second = browser(reviewer), browser(admin)
    second_token = token(second, "/admin/review")
    assert approve(first, submitted).status_code == 303
    late = second.post(
        f"/admin/review/{submitted}/approve",
        data={"csrf_token": second_token},
        follow_redirects=False,
    )
    assert late.status_code == 409
    assert "someone acted on it first" in late.text


def test_sending_back_needs_a_note_and_returns_a_draft(
    browser: Browser,
    reviewer: Account,
    editor: Account,
    submitted: int,
    lost_passport: int,
    session_factory: sessionmaker[Session],
) -> None:
    staff = browser(reviewer)
    empty = staff.post(
        f"/admin/review/{submitted}/send-back",
        data={"csrf_token": token(staff, "/admin/review"), "review_note": "  "},
    )
    assert empty.status_code == 400
    assert "Say what needs to change" in empty.text
    sent = staff.post(
        f"/admin/review/{submitted}/send-back",
        data={"csrf_token": token(staff, "/admin/review"), "review_note": "Add the ETD fee"},
        follow_redirects=False,
    )
    assert sent.headers["location"] == "/admin/review?done=sent-back"
    assert status(session_factory, submitted) == RevisionStatus.DRAFT
    author = browser(editor)
    page = author.get(f"/admin/articles/{lost_passport}/revisions/{submitted}/edit")
    assert "Add the ETD fee" in page.text


def test_approval_can_be_scheduled_in_the_reviewers_time_zone(
    browser: Browser,
    reviewer: Account,
    client: TestClient,
    submitted: int,
    session_factory: sessionmaker[Session],
) -> None:
    london = ZoneInfo("Europe/London")
    start = (datetime.now(london) + timedelta(days=2)).replace(second=0, microsecond=0)
    response = approve(browser(reviewer), submitted, publish_at=start.strftime("%Y-%m-%dT%H:%M"))
    assert response.headers["location"] == "/admin/review?done=scheduled"
    assert served(client).startswith("Report it to the police")  # not yet
    with session_factory() as session:
        revision = session.get_one(GuidanceRevision, submitted)
        assert revision.publish_at is not None
        stored = revision.publish_at.replace(tzinfo=revision.publish_at.tzinfo or UTC)
        assert stored == start


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"publish_at": "tomorrow"}, "Enter the publication time as a date and time"),
        ({"publish_at": "2001-01-01T10:00"}, "The publication time must be in the future"),
        ({"expires_at": "2001-01-01T10:00"}, "The expiry time must be after the publication time"),
    ],
)
def test_bad_schedules_are_explained(
    browser: Browser,
    reviewer: Account,
    submitted: int,
    data: dict[str, str],
    message: str,
    session_factory: sessionmaker[Session],
) -> None:
    response = approve(browser(reviewer), submitted, **data)
    assert response.status_code == 400
    assert message in response.text
    assert status(session_factory, submitted) == RevisionStatus.IN_REVIEW


def test_a_reviewer_cancels_a_scheduled_publication_from_the_article_page(
    browser: Browser,
    reviewer: Account,
    client: TestClient,
    submitted: int,
    lost_passport: int,
    session_factory: sessionmaker[Session],
) -> None:
    staff = browser(reviewer)
    later = datetime.now(ZoneInfo("Europe/London")) + timedelta(days=3)
    approve(staff, submitted, publish_at=later.strftime("%Y-%m-%dT%H:%M"))
    page = staff.get(f"/admin/articles/{lost_passport}")
    cancel = f'action="/admin/articles/{lost_passport}/revisions/{submitted}/withdraw"'
    assert cancel in page.text
    staff.post(
        f"/admin/articles/{lost_passport}/revisions/{submitted}/withdraw",
        data={"csrf_token": token(staff)},
    )
    assert status(session_factory, submitted) == RevisionStatus.ARCHIVED
    assert served(client).startswith("Report it to the police")
