"""Who may open the admin: one staff sign-in, roles per section, CSRF, a safe ``next``."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from bot.console import auth
from bot.console.web import landing, safe_next
from bot.db.models import Officer, Presence
from tests.app.admin.conftest import PASSWORD, Browser, token
from tests.app.console.conftest import Account, csrf, password_step


def test_the_admin_needs_a_session_and_comes_back_after_sign_in(
    client: TestClient, editor: Account
) -> None:
    response = client.get("/admin/articles?topic=lost-stolen-passport", follow_redirects=False)
    assert response.status_code == 303
    location = response.headers["location"]
    assert location == "/console/sign-in?next=/admin/articles%3Ftopic%3Dlost-stolen-passport"
    page = client.get(location)
    assert "Sign in to the guidance admin" in page.text
    assert 'name="next" value="/admin/articles?topic=lost-stolen-passport"' in page.text
    first = client.post(
        "/console/sign-in",
        data={
            "email": editor.email,
            "password": PASSWORD,
            "csrf_token": csrf(page.text),
            "next": "/admin/articles?topic=lost-stolen-passport",
        },
        follow_redirects=False,
    )
    assert first.headers["location"].startswith("/console/sign-in/code?next=/admin/articles")
    code_page = client.get(first.headers["location"])
    done = client.post(
        "/console/sign-in/code",
        data={
            "code": editor.code(),
            "csrf_token": csrf(code_page.text),
            "next": "/admin/articles?topic=lost-stolen-passport",
        },
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/admin/articles?topic=lost-stolen-passport"
    # One cookie for the console and the admin.
    cookie = next(c for c in client.cookies.jar if c.name == auth.SESSION_COOKIE)
    assert cookie.path == "/"
    assert client.get("/admin/articles").status_code == 200


@pytest.mark.parametrize(
    ("role", "home"),
    [("editor", "/admin"), ("reviewer", "/admin"), ("officer", "/console"), ("admin", "/console")],
)
def test_staff_land_where_their_role_works(role: str, home: str) -> None:
    assert landing(role, None) == home
    # An editor asked to go to the console goes to the admin instead.
    assert landing("editor", "/console/conversations") == "/admin"
    assert landing("officer", "/admin/articles") == "/admin/articles"


@pytest.mark.parametrize(
    "raw",
    [
        "https://evil.example/admin",
        "//evil.example/admin",
        "/\\evil.example",
        "/static/x.js",
        "/admin/../static",
        "/administrator",
        "/admin\r\nSet-Cookie: x",
        "",
        None,
    ],
)
def test_next_is_only_ever_a_local_console_or_admin_path(raw: str | None) -> None:
    assert safe_next(raw) is None


def test_next_keeps_console_and_admin_paths() -> None:
    assert safe_next("/admin") == "/admin"
    assert safe_next("/admin/articles/3?from=1&to=2") == "/admin/articles/3?from=1&to=2"
    assert safe_next("/console/conversations/x") == "/console/conversations/x"


def test_an_outside_next_is_dropped_on_sign_in(client: TestClient, editor: Account) -> None:
    page = client.get("/console/sign-in?next=https://evil.example/")
    assert 'name="next"' not in page.text
    first = password_step(client, editor.email, PASSWORD)
    assert first.headers["location"] == "/console/sign-in/code"


def test_editors_and_reviewers_are_refused_at_the_console(
    browser: Browser, editor: Account, reviewer: Account
) -> None:
    for account in (editor, reviewer):
        staff = browser(account)
        page = staff.get("/console", follow_redirects=False)
        assert page.status_code == 403
        assert "Your account is for the guidance admin" in page.text
        assert 'href="/admin"' in page.text


def test_an_editor_signing_in_does_not_go_on_duty(
    browser: Browser, editor: Account, session_factory: sessionmaker[Session]
) -> None:
    browser(editor)
    with session_factory() as session:
        assert session.get_one(Officer, editor.id).presence == Presence.OFFLINE


def test_duty_officers_are_refused_in_the_admin(browser: Browser, officer: Account) -> None:
    staff = browser(officer)
    page = staff.get("/admin/articles")
    assert page.status_code == 403
    assert "Go to the duty officers" in page.text
    assert staff.get("/admin/review").status_code == 403


def test_a_supervisor_sees_only_the_dashboard_in_the_nav(
    browser: Browser, supervisor: Account
) -> None:
    staff = browser(supervisor)
    assert staff.get("/admin/articles").status_code == 403
    assert staff.get("/admin", follow_redirects=False).headers["location"] == "/admin/dashboard"
    page = staff.get("/admin/articles")
    assert 'href="/admin/dashboard"' in page.text
    assert 'href="/admin/posts"' not in page.text


def test_the_nav_shows_editors_their_sections(browser: Browser, editor: Account) -> None:
    page = browser(editor).get("/admin/articles")
    for section in ("articles", "review", "posts", "travel-advice", "feedback", "unanswered"):
        assert f'href="/admin/{section}"' in page.text
    assert 'href="/admin/dashboard"' not in page.text
    assert 'aria-current="page"' in page.text


def test_an_admin_may_open_both(browser: Browser, admin: Account) -> None:
    staff = browser(admin)
    assert staff.get("/admin/articles").status_code == 200
    assert staff.get("/console").status_code == 200


def test_admin_forms_need_the_csrf_token(
    browser: Browser, editor: Account, lost_passport: int
) -> None:
    staff = browser(editor)
    refused = staff.post(f"/admin/articles/{lost_passport}/drafts", follow_redirects=False)
    assert refused.status_code == 403
    wrong = staff.post("/admin/articles/preview", data={"csrf_token": "not-it", "body": "x"})
    assert wrong.status_code == 403
    right = staff.post(
        "/admin/articles/preview", data={"csrf_token": token(staff), "body": "**x**"}
    )
    assert right.json()["html"] == "<p><strong>x</strong></p>"


def test_posting_without_a_session_goes_to_sign_in(client: TestClient, lost_passport: int) -> None:
    response = client.post(f"/admin/articles/{lost_passport}/drafts", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/console/sign-in?next=/admin"


def test_signing_out_of_the_admin_ends_the_session(browser: Browser, editor: Account) -> None:
    staff = browser(editor)
    out = staff.post("/console/sign-out", data={"csrf_token": token(staff)}, follow_redirects=False)
    assert out.status_code == 303
    assert staff.get("/admin/articles", follow_redirects=False).status_code == 303


def test_admin_pages_carry_the_security_headers(browser: Browser, editor: Account) -> None:
    page = browser(editor).get("/admin/articles")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    assert "<script>" not in page.text  # no inline scripts
