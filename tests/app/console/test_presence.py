"""Presence follows the console session: an officer who is gone does not count as online.

The rota counts only officers who are online (``bot.handoff.rota.available``);
an officer whose session expired, or who signed out, must not be among them,
or citizens would be promised an officer who is not there.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from bot.console import auth, live, presence
from bot.core.config import Settings
from bot.db.models import AuditEvent, ConsoleSession, Officer, Presence, utcnow
from bot.db.session import session_scope
from bot.handoff import rota
from bot.main import create_app
from tests.app.console.conftest import (
    PASSWORD,
    Account,
    csrf,
    sign_in,
    signed_in,
    urgent_responder,
)
from tests.app.console.test_conversation import say, start_webchat
from tests.support.fake_rasa import FakeRasa

NOBODY_ONLINE = "No duty officer is online at this moment."


def presence_of(factory: sessionmaker[Session], account: Account) -> Presence:
    with factory() as session:
        return session.get_one(Officer, account.id).presence


def available_emails(factory: sessionmaker[Session]) -> list[str]:
    with factory() as session:
        return [o.email for o in rota.available(rota.load_officers(session), utcnow())]


def audit_actions(factory: sessionmaker[Session]) -> list[str]:
    with factory() as session:
        return list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def session_id(client: TestClient) -> str:
    """The stored id (SHA-256 of the key) of the session this client's cookie holds."""
    state = client.app.state.console  # type: ignore[attr-defined]
    key = state.signer.session_key(client.cookies.get(auth.SESSION_COOKIE))
    assert key is not None
    return hashlib.sha256(key.encode()).hexdigest()


def idle_for(factory: sessionmaker[Session], minutes: int, *only: str) -> None:
    """Makes sessions (all, or the given ids) look unused for ``minutes``."""
    with session_scope(factory) as session:
        query = update(ConsoleSession).values(last_seen_at=utcnow() - timedelta(minutes=minutes))
        if only:
            query = query.where(ConsoleSession.id.in_(only))
        session.execute(query)


def wait_for(check: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def next_code(account: Account) -> str:
    """The code of the next 30-second step: a second sign-in cannot reuse the current one."""
    totp = pyotp.TOTP(account.secret)
    return totp.at(time.time() + totp.interval)


def test_signing_in_counts_and_signing_out_stops_counting(
    officer_client: TestClient, alice: Account, session_factory: sessionmaker[Session]
) -> None:
    assert available_emails(session_factory) == [alice.email]
    token = csrf(officer_client.get("/console").text)
    officer_client.post("/console/sign-out", data={"csrf_token": token})
    assert presence_of(session_factory, alice) == Presence.OFFLINE
    assert available_emails(session_factory) == []


def test_an_idle_session_found_expired_by_a_request_sets_the_officer_offline(
    officer_client: TestClient, alice: Account, session_factory: sessionmaker[Session]
) -> None:
    idle_for(session_factory, 31)
    response = officer_client.get("/console", follow_redirects=False)
    assert response.status_code == 303
    assert presence_of(session_factory, alice) == Presence.OFFLINE
    assert available_emails(session_factory) == []
    assert audit_actions(session_factory)[-1] == "console.session_expired"


def test_the_sweep_sets_offline_an_officer_who_just_left(
    officer_client: TestClient, alice: Account, session_factory: sessionmaker[Session]
) -> None:
    # No request comes after the browser closed: only the sweep notices.
    policy = officer_client.app.state.console.policy  # type: ignore[attr-defined]
    assert presence.sweep(session_factory, policy).offline == []  # a live session: no change
    assert presence_of(session_factory, alice) == Presence.ONLINE
    idle_for(session_factory, 31)
    expiry = presence.sweep(session_factory, policy)
    assert (expiry.sessions, expiry.offline) == (1, [alice.email])
    assert presence_of(session_factory, alice) == Presence.OFFLINE
    with session_factory() as session:
        assert session.scalars(select(ConsoleSession)).all() == []
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "console.session_expired")
        ).one()
        assert (event.actor, event.subject) == ("system", alice.email)
        assert event.details == {"presence": "offline", "was": "online"}


def test_past_the_absolute_limit_the_sweep_sets_the_officer_offline_too(
    officer_client: TestClient, alice: Account, session_factory: sessionmaker[Session]
) -> None:
    with session_scope(session_factory) as session:
        session.execute(
            update(ConsoleSession).values(created_at=utcnow() - timedelta(hours=12, minutes=1))
        )
    presence.sweep(session_factory, officer_client.app.state.console.policy)  # type: ignore[attr-defined]
    assert presence_of(session_factory, alice) == Presence.OFFLINE


def test_an_away_officer_whose_session_expires_goes_offline(
    officer_client: TestClient, alice: Account, session_factory: sessionmaker[Session]
) -> None:
    token = csrf(officer_client.get("/console").text)
    officer_client.post("/console/presence", data={"csrf_token": token, "presence": "away"})
    assert presence_of(session_factory, alice) == Presence.AWAY
    idle_for(session_factory, 31)
    presence.sweep(session_factory, officer_client.app.state.console.policy)  # type: ignore[attr-defined]
    assert presence_of(session_factory, alice) == Presence.OFFLINE


def test_another_live_session_keeps_the_officer_online(
    client: TestClient,
    second_client: TestClient,
    alice: Account,
    session_factory: sessionmaker[Session],
) -> None:
    signed_in(client, alice)
    second = sign_in(second_client, alice.email, PASSWORD, next_code(alice))
    assert second.status_code == 303, second.text
    policy = client.app.state.console.policy  # type: ignore[attr-defined]

    # The first computer is left idle; the second is still in use.
    idle_for(session_factory, 31, session_id(client))
    assert presence.sweep(session_factory, policy).offline == []
    assert presence_of(session_factory, alice) == Presence.ONLINE
    assert client.get("/console", follow_redirects=False).status_code == 303
    assert second_client.get("/console").status_code == 200
    assert available_emails(session_factory) == [alice.email]

    # Then the second one is left too.
    idle_for(session_factory, 31, session_id(second_client))
    assert presence.sweep(session_factory, policy).offline == [alice.email]
    assert presence_of(session_factory, alice) == Presence.OFFLINE


def test_other_officers_keep_their_presence(
    client: TestClient,
    second_client: TestClient,
    alice: Account,
    bob: Account,
    session_factory: sessionmaker[Session],
) -> None:
    signed_in(client, alice)
    signed_in(second_client, bob)
    idle_for(session_factory, 31, session_id(client))
    presence.sweep(session_factory, client.app.state.console.policy)  # type: ignore[attr-defined]
    assert presence_of(session_factory, alice) == Presence.OFFLINE
    assert presence_of(session_factory, bob) == Presence.ONLINE
    assert available_emails(session_factory) == [bob.email]


def test_the_app_sweeps_by_itself_and_citizens_are_then_told_nobody_is_online(
    settings: Settings,
    alice: Account,
    fake_rasa: FakeRasa,
    session_factory: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(presence, "SWEEP_SECONDS", 0.05)
    fake_rasa.responder = urgent_responder
    with TestClient(create_app(settings), client=("127.0.0.1", 50000)) as client:
        signed_in(client, alice)
        session_id_, headers = start_webchat(client)
        replies = say(client, session_id_, headers, "my son has been arrested in Dubai")
        assert any("You are next in the queue" in reply["text"] for reply in replies)

        # Alice closes her browser; nothing else reaches the app from her.
        idle_for(session_factory, 31)
        wait_for(
            lambda: presence_of(session_factory, alice) == Presence.OFFLINE,
            "the app's sweep to set the officer offline",
        )
        assert available_emails(session_factory) == []

        other, other_headers = start_webchat(client)
        replies = say(client, other, other_headers, "my daughter has been arrested in Dubai")
        assert any(NOBODY_ONLINE in reply["text"] for reply in replies)


def test_the_console_socket_noticing_expiry_sets_the_officer_offline(
    officer_client: TestClient,
    alice: Account,
    session_factory: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(live, "CHECK_SECONDS", 0.05)
    with officer_client.websocket_connect("/console/ws") as console:
        idle_for(session_factory, 31)
        assert console.receive_json() == {"type": "signed_out"}
    assert presence_of(session_factory, alice) == Presence.OFFLINE
