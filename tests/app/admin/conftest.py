"""Fixtures for the guidance admin: staff of every role, each in their own signed-in browser."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from bot.db.models import GuidanceRevision
from bot.db.session import session_scope
from bot.guidance.store import RevisionDraft, add_revision, create_article, publish_revision
from tests.app.console.conftest import PASSWORD as PASSWORD
from tests.app.console.conftest import Account, add_account, csrf, sign_in

LOST_PASSPORT = (
    "Report it to the police in {country_name}, then apply for an emergency travel document."
)


@pytest.fixture
def editor(session_factory: sessionmaker[Session]) -> Account:
    return add_account(session_factory, "eddie@example.gov.uk", "Eddie Editor", role="editor")


@pytest.fixture
def reviewer(session_factory: sessionmaker[Session]) -> Account:
    return add_account(session_factory, "rita@example.gov.uk", "Rita Reviewer", role="reviewer")


@pytest.fixture
def officer(session_factory: sessionmaker[Session]) -> Account:
    return add_account(session_factory, "olly@example.gov.uk", "Olly Officer")


@pytest.fixture
def supervisor(session_factory: sessionmaker[Session]) -> Account:
    return add_account(session_factory, "sue@example.gov.uk", "Sue Supervisor", role="supervisor")


@pytest.fixture
def admin(session_factory: sessionmaker[Session]) -> Account:
    return add_account(session_factory, "ada@example.gov.uk", "Ada Admin", role="admin")


Browser = Callable[[Account], TestClient]


@pytest.fixture
def browser(client: TestClient) -> Iterator[Browser]:
    """A browser on the app (own cookies) signed in as an account; one per account.

    Each account signs in once per test: a TOTP code works only once.
    """
    opened: dict[str, TestClient] = {}

    def open_as(account: Account) -> TestClient:
        if account.email in opened:
            return opened[account.email]
        other = TestClient(client.app, client=("127.0.0.3", 50002 + len(opened)))
        response = sign_in(other, account.email, PASSWORD, account.code())
        assert response.status_code == 303, response.text
        opened[account.email] = other
        return other

    yield open_as
    for other in opened.values():
        other.close()


def token(client: TestClient, path: str = "/admin/articles") -> str:
    """The session's CSRF token, read from an admin page."""
    page = client.get(path)
    assert page.status_code == 200, page.text
    return csrf(page.text)


@pytest.fixture
def lost_passport(session_factory: sessionmaker[Session]) -> int:
    """The generic lost-passport article, published (as the seed does); returns its id."""
    with session_scope(session_factory) as session:
        article = create_article(session=session, topic="lost-stolen-passport", country=None)
        revision = add_revision(
            session=session,
            article=article,
            draft=RevisionDraft(
                title="Lost or stolen passport abroad",
                body=LOST_PASSPORT,
                source_url="https://www.gov.uk/emergency-travel-document",
                last_reviewed=date(2026, 9, 14),
                review_by=date(2027, 3, 14),
                example_questions=("i lost my passport",),
            ),
            author="seed",
        )
        publish_revision(session=session, revision=revision, reviewer="seed")
        return article.id


def revision_ids(factory: sessionmaker[Session], article_id: int) -> list[int]:
    with factory() as session:
        return [
            revision.id
            for revision in session.query(GuidanceRevision)
            .filter(GuidanceRevision.article_id == article_id)
            .order_by(GuidanceRevision.number)
        ]
