"""Fixtures for the console: officers with known passwords and TOTP secrets, signed-in clients."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import time, timedelta
from typing import Any

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from bot.console import officers
from bot.conversations import store
from bot.core.config import Settings
from bot.db.models import utcnow
from bot.db.session import session_scope

PASSWORD = "correct horse battery staple"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass(frozen=True)
class Account:
    """An officer the tests can sign in as."""

    id: int
    email: str
    name: str
    secret: str

    def code(self) -> str:
        return pyotp.TOTP(self.secret).now()


def add_account(
    factory: sessionmaker[Session], email: str, name: str, role: str = "officer"
) -> Account:
    with session_scope(factory) as session:
        created = officers.add_officer(
            session=session,
            email=email,
            name=name,
            role=role,
            timezone="Europe/London",
            password=PASSWORD,
        )
        officers.add_shifts(
            session=session, email=email, days=list(range(7)), starts=time(0), ends=time(0)
        )
        return Account(created.officer_id, created.email, name, created.totp_secret)


@pytest.fixture
def alice(session_factory: sessionmaker[Session]) -> Account:
    return add_account(session_factory, "alice@example.gov.uk", "Alice Officer")


@pytest.fixture
def bob(session_factory: sessionmaker[Session]) -> Account:
    return add_account(session_factory, "bob@example.gov.uk", "Bob Officer")


def csrf(html: str) -> str:
    found = CSRF.search(html)
    assert found, "the page has no CSRF token"
    return found.group(1)


def password_step(client: TestClient, email: str, password: str) -> Any:
    page = client.get("/console/sign-in")
    return client.post(
        "/console/sign-in",
        data={"email": email, "password": password, "csrf_token": csrf(page.text)},
        follow_redirects=False,
    )


def sign_in(client: TestClient, email: str, password: str, code: str) -> Any:
    """Both steps; returns the response to the second."""
    first = password_step(client, email, password)
    assert first.status_code == 303
    assert first.headers["location"].endswith("/console/sign-in/code")
    page = client.get("/console/sign-in/code")
    assert page.status_code == 200
    return client.post(
        "/console/sign-in/code",
        data={"code": code, "csrf_token": csrf(page.text)},
        follow_redirects=False,
    )


def signed_in(client: TestClient, account: Account) -> str:
    """Signs ``account`` in; returns the session's CSRF token."""
    response = sign_in(client, account.email, PASSWORD, account.code())
    assert response.status_code == 303, response.text
    return csrf(client.get("/console").text)


@pytest.fixture
def officer_client(client: TestClient, alice: Account) -> TestClient:
    """The app's client, signed in as Alice."""
    signed_in(client, alice)
    return client


@pytest.fixture
def second_client(settings: Settings, client: TestClient) -> Iterator[TestClient]:
    """Another browser on the same app (its own cookies)."""
    other = TestClient(client.app, client=("127.0.0.2", 50001))
    yield other


def queue_conversation(
    factory: sessionmaker[Session],
    *,
    channel: str = "webchat",
    urgent: bool = False,
    minutes_ago: int = 0,
    summary: str = "help",
    external_id: str | None = None,
) -> tuple[str, int]:
    """A conversation waiting in the queue (the citizen's words as its summary and message)."""
    with session_scope(factory) as session:
        conversation = store.create_conversation(
            session=session,
            channel=channel,
            external_id=external_id if channel != "webchat" else None,
        )
        conversation.topic = "arrest-detention" if urgent else "passport-renewal-abroad"
        conversation.country = "AE" if urgent else "FR"
        store.store_inbound(
            session=session, conversation_id=conversation.id, text=summary, provider_id=None
        )
        handoff = store.open_handoff(
            session=session,
            conversation=conversation,
            reason="urgent" if urgent else "bot-handoff",
            urgent=urgent,
            summary=summary,
        )
        handoff.queued_at = utcnow() - timedelta(minutes=minutes_ago)
        return conversation.id, handoff.id


def urgent_responder(sender: str, text: str) -> list[dict[str, Any]]:
    """The bot's answer to an arrest: the 24-hour line, urgent, and a handoff."""
    return [
        {
            "recipient_id": sender,
            "custom": {
                "text": "Call the 24-hour line on +44 20 7008 5000. An officer will join.",
                "topic": "arrest-detention",
                "country": "AE",
                "urgent": True,
                "handoff": True,
            },
        }
    ]
