"""Console sign-in: password and TOTP, one generic error, throttling, sessions, CSRF."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pyotp
import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from bot.console import auth
from bot.core.config import Settings
from bot.db.models import AuditEvent, ConsoleSession, Officer, Presence, utcnow
from bot.db.session import session_scope
from bot.main import create_app
from tests.app.console.conftest import (
    PASSWORD,
    Account,
    csrf,
    password_step,
    sign_in,
    signed_in,
)


def audit_actions(factory: sessionmaker[Session]) -> list[str]:
    with factory() as session:
        return list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def presence(factory: sessionmaker[Session], account: Account) -> Presence:
    with factory() as session:
        return session.get_one(Officer, account.id).presence


def test_sign_in_needs_the_password_and_a_current_code(
    client: TestClient, alice: Account, session_factory: sessionmaker[Session]
) -> None:
    response = sign_in(client, alice.email, PASSWORD, alice.code())
    assert response.status_code == 303
    assert response.headers["location"].endswith("/console")
    page = client.get("/console")
    assert page.status_code == 200
    assert "Alice Officer" in page.text
    assert "console.sign_in" in audit_actions(session_factory)
    assert presence(session_factory, alice) == Presence.ONLINE


def test_the_email_address_is_not_case_sensitive(client: TestClient, alice: Account) -> None:
    response = sign_in(client, alice.email.upper(), PASSWORD, alice.code())
    assert response.status_code == 303


@pytest.mark.parametrize("wrong", ["password", "code", "both", "email"])
def test_a_wrong_part_gets_the_same_generic_error(
    client: TestClient, alice: Account, session_factory: sessionmaker[Session], wrong: str
) -> None:
    email = "nobody@example.gov.uk" if wrong == "email" else alice.email
    password = "not the password" if wrong in ("password", "both") else PASSWORD
    right = alice.code()
    code = f"{(int(right) + 1) % 1_000_000:06d}" if wrong in ("code", "both") else right
    # The first step always moves on to the code: it never says the password was wrong.
    response = sign_in(client, email, password, code)
    assert response.status_code == 400
    assert auth.GENERIC_ERROR.replace("'", "&#39;") in response.text
    assert "password is wrong" not in response.text and "code is wrong" not in response.text
    assert client.get("/console", follow_redirects=False).status_code == 303
    assert audit_actions(session_factory)[-1] == "console.sign_in_failed"


def test_a_code_is_never_accepted_twice(
    client: TestClient, alice: Account, session_factory: sessionmaker[Session]
) -> None:
    code = alice.code()
    assert sign_in(client, alice.email, PASSWORD, code).status_code == 303
    token = csrf(client.get("/console").text)
    client.post("/console/sign-out", data={"csrf_token": token}, follow_redirects=False)
    again = sign_in(client, alice.email, PASSWORD, code)
    assert again.status_code == 400
    assert client.get("/console", follow_redirects=False).status_code == 303


def test_a_code_one_step_old_is_still_accepted(client: TestClient, alice: Account) -> None:
    previous = pyotp.TOTP(alice.secret).at(utcnow() - timedelta(seconds=30))
    assert sign_in(client, alice.email, PASSWORD, previous).status_code == 303


@pytest.fixture
def strict_client(settings: Settings) -> Iterator[TestClient]:
    strict = settings.model_copy(
        update={
            "console_signin_limit_per_account": "3/15 minutes",
            "console_signin_limit_per_client": "5/15 minutes",
        }
    )
    with TestClient(create_app(strict), client=("127.0.0.1", 50000)) as test_client:
        yield test_client


def test_sign_in_is_refused_after_too_many_failures_on_an_account(
    strict_client: TestClient, alice: Account
) -> None:
    for _ in range(3):
        assert sign_in(strict_client, alice.email, "wrong password!", "000000").status_code == 400
    refused = password_step(strict_client, alice.email, PASSWORD)
    assert refused.status_code == 429
    assert "Too many attempts" in refused.text
    assert strict_client.get("/console", follow_redirects=False).status_code == 303


def test_sign_in_is_refused_after_too_many_failures_from_one_client(
    strict_client: TestClient, alice: Account
) -> None:
    for number in range(5):
        failed = sign_in(strict_client, f"guess{number}@example.gov.uk", "wrong!", "000000")
        assert failed.status_code == 400
    # Even the right account and password: this client has used up its attempts.
    assert password_step(strict_client, alice.email, PASSWORD).status_code == 429


def test_the_sign_in_form_needs_its_csrf_token(client: TestClient, alice: Account) -> None:
    client.get("/console/sign-in")
    response = client.post(
        "/console/sign-in",
        data={"email": alice.email, "password": PASSWORD, "csrf_token": "forged"},
        follow_redirects=False,
    )
    assert response.status_code == 403


def test_the_code_form_needs_its_csrf_token(client: TestClient, alice: Account) -> None:
    assert password_step(client, alice.email, PASSWORD).status_code == 303
    response = client.post(
        "/console/sign-in/code", data={"code": alice.code()}, follow_redirects=False
    )
    assert response.status_code == 403
    assert client.get("/console", follow_redirects=False).status_code == 303


def test_cookies_are_http_only_and_strict(client: TestClient, alice: Account) -> None:
    response = sign_in(client, alice.email, PASSWORD, alice.code())
    cookie = next(
        value
        for value in response.headers.get_list("set-cookie")
        if value.startswith(f"{auth.SESSION_COOKIE}=")
    )
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Secure" not in cookie  # plain http locally
    # One staff session for the console and the guidance admin.
    assert "Path=/;" in cookie or cookie.endswith("Path=/")


def test_cookies_are_secure_behind_https(settings: Settings, alice: Account) -> None:
    public = settings.model_copy(update={"public_base_url": "https://consular.example.gov.uk"})
    with TestClient(create_app(public)) as test_client:
        page = test_client.get("/console/sign-in")
    assert "Secure" in page.headers["set-cookie"]


def _age_session(factory: sessionmaker[Session], **ago: timedelta) -> None:
    with session_scope(factory) as session:
        values = {name: utcnow() - delta for name, delta in ago.items()}
        session.execute(update(ConsoleSession).values(**values))


def test_a_session_expires_when_idle(
    officer_client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    assert officer_client.get("/console").status_code == 200
    _age_session(session_factory, last_seen_at=timedelta(minutes=29))
    assert officer_client.get("/console").status_code == 200  # and this use renews it
    _age_session(session_factory, last_seen_at=timedelta(minutes=31))
    response = officer_client.get("/console", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].endswith("/console/sign-in")
    with session_factory() as session:
        assert session.scalars(select(ConsoleSession)).all() == []


def test_a_session_expires_after_its_absolute_limit_even_in_use(
    officer_client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    _age_session(session_factory, created_at=timedelta(hours=11, minutes=59))
    assert officer_client.get("/console").status_code == 200
    _age_session(session_factory, created_at=timedelta(hours=12, minutes=1))
    assert officer_client.get("/console", follow_redirects=False).status_code == 303


def test_the_limits_come_from_the_settings(settings: Settings, alice: Account) -> None:
    short = settings.model_copy(update={"console_session_idle_minutes": 1})
    with TestClient(create_app(short)) as test_client:
        signed_in(test_client, alice)
        policy = test_client.app.state.console.policy  # type: ignore[attr-defined]
    assert policy.idle == timedelta(minutes=1)


def test_sign_out_ends_the_session(
    officer_client: TestClient, alice: Account, session_factory: sessionmaker[Session]
) -> None:
    cookie = officer_client.cookies.get(auth.SESSION_COOKIE)
    token = csrf(officer_client.get("/console").text)
    response = officer_client.post(
        "/console/sign-out", data={"csrf_token": token}, follow_redirects=False
    )
    assert response.status_code == 303
    assert officer_client.get("/console", follow_redirects=False).status_code == 303
    # The old cookie opens nothing either: the session is gone on the server.
    officer_client.cookies.set(auth.SESSION_COOKIE, cookie or "", path="/console")
    assert officer_client.get("/console", follow_redirects=False).status_code == 303
    assert audit_actions(session_factory)[-1] == "console.sign_out"
    assert presence(session_factory, alice) == Presence.OFFLINE


def test_sign_out_needs_the_csrf_token(officer_client: TestClient) -> None:
    response = officer_client.post("/console/sign-out", follow_redirects=False)
    assert response.status_code == 403
    assert officer_client.get("/console").status_code == 200


def test_an_officer_sets_their_presence(
    officer_client: TestClient, alice: Account, session_factory: sessionmaker[Session]
) -> None:
    token = csrf(officer_client.get("/console").text)
    officer_client.post("/console/presence", data={"csrf_token": token, "presence": "away"})
    assert presence(session_factory, alice) == Presence.AWAY
    officer_client.post("/console/presence", data={"presence": "offline"})
    assert presence(session_factory, alice) == Presence.AWAY  # no token, no change


def test_an_old_password_hash_is_upgraded_on_sign_in(
    client: TestClient, alice: Account, session_factory: sessionmaker[Session]
) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8192).hash(PASSWORD)
    with session_scope(session_factory) as session:
        session.get_one(Officer, alice.id).password_hash = weak
    assert sign_in(client, alice.email, PASSWORD, alice.code()).status_code == 303
    with session_factory() as session:
        upgraded = session.get_one(Officer, alice.id).password_hash
    assert upgraded != weak
    assert not PasswordHasher().check_needs_rehash(upgraded)


def test_pages_need_a_session(client: TestClient) -> None:
    for path in (
        "/console",
        "/console/queue",
        f"/console/conversations/{'0' * 8}-0000-0000-0000-{'0' * 12}",
    ):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"].endswith("/console/sign-in")
