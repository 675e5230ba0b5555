"""A script in an article body never reaches a page unescaped: admin, web chat or console."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from bot.db.models import GuidanceRevision
from bot.db.session import session_scope
from bot.guidance.render import to_html
from tests.app.admin.conftest import Browser, revision_ids, token
from tests.app.admin.test_articles import open_draft, save
from tests.app.conftest import INTERNAL_TOKEN
from tests.app.console.conftest import Account, signed_in
from tests.support.fake_rasa import FakeRasa

HOSTILE = (
    "Hello <script>alert(1)</script> and <img src=x onerror=alert(2)>\n\n"
    '[click me](javascript:alert(3)) <a href="javascript:alert(4)">raw</a>\n\n'
    '<iframe src="https://evil.example"></iframe><svg onload=alert(5)>'
)


class Elements(HTMLParser):
    """Every real element of a page, as a browser would build it (escaped text is not one)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))


def assert_safe(html: str) -> None:
    """No script but our own (by src), no event handlers, no javascript: links, no embeds."""
    parser = Elements()
    parser.feed(html)
    for tag, attrs in parser.found:
        assert tag not in {"img", "iframe", "svg", "object", "embed"}, tag
        if tag == "script":
            assert (attrs.get("src") or "").startswith("/static/"), attrs
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)
            assert not (value or "").strip().lower().startswith("javascript:"), (tag, name)


def test_the_renderer_strips_every_hostile_part() -> None:
    assert_safe(to_html(HOSTILE))
    assert "Hello" in to_html(HOSTILE)


def test_no_admin_page_shows_the_script(
    browser: Browser,
    editor: Account,
    reviewer: Account,
    lost_passport: int,
    session_factory: sessionmaker[Session],
) -> None:
    writer = browser(editor)
    edit_path = open_draft(writer, lost_passport)
    assert_safe(save(writer, edit_path, body=HOSTILE, action="preview").text)
    save(writer, edit_path, body=HOSTILE, title="<script>alert(6)</script>", action="save")
    assert_safe(writer.get(edit_path).text)
    first, second = revision_ids(session_factory, lost_passport)
    assert_safe(writer.get(f"/admin/articles/{lost_passport}?from={first}&to={second}").text)
    assert_safe(writer.get("/admin/articles").text)
    assert_safe(writer.get("/admin/articles?q=script").text)
    preview = writer.post(
        "/admin/articles/preview", data={"csrf_token": token(writer), "body": HOSTILE}
    ).json()
    assert_safe(preview["html"])
    writer.post(
        f"/admin/articles/{lost_passport}/revisions/{second}/submit",
        data={"csrf_token": token(writer)},
    )
    checker = browser(reviewer)
    assert_safe(checker.get("/admin/review").text)
    checker.post(
        f"/admin/review/{second}/approve", data={"csrf_token": token(checker, "/admin/review")}
    )
    assert_safe(checker.get(f"/admin/articles/{lost_passport}").text)


@pytest.fixture
def hostile_published(session_factory: sessionmaker[Session], lost_passport: int) -> None:
    with session_scope(session_factory) as session:
        session.execute(
            update(GuidanceRevision)
            .where(GuidanceRevision.article_id == lost_passport)
            .values(body=HOSTILE)
        )


def test_web_chat_and_the_console_transcript_never_get_the_script(
    client: TestClient,
    fake_rasa: FakeRasa,
    hostile_published: None,
    session_factory: sessionmaker[Session],
) -> None:
    guidance = client.get(
        "/api/internal/guidance",
        params={"topic": "lost-stolen-passport", "country": "ES"},
        headers={"X-Internal-Token": INTERNAL_TOKEN},
    ).json()

    def answer(sender: str, text: str) -> list[dict[str, Any]]:
        # As the action server does: the article's plain text and Markdown, then a handoff.
        return [
            {
                "recipient_id": sender,
                "custom": {
                    "text": guidance["text"],
                    "markdown": guidance["markdown"],
                    "topic": "lost-stolen-passport",
                    "country": "ES",
                    "handoff": True,
                },
            }
        ]

    fake_rasa.responder = answer
    session = client.post("/api/webchat/sessions").json()
    headers = {"Authorization": f"Bearer {session['token']}"}
    replies = client.post(
        f"/api/webchat/sessions/{session['session_id']}/messages",
        json={"text": "I lost my passport in Madrid"},
        headers=headers,
    ).json()
    htmls = [reply["html"] for reply in replies["replies"] if reply.get("html")]
    assert htmls, replies
    for html in htmls:
        assert_safe(html)
    officer = _officer(session_factory)
    signed_in(client, officer)
    page = client.get(f"/console/conversations/{session['session_id']}")
    assert page.status_code == 200
    assert_safe(page.text)
    assert "<script>alert(1)" not in page.text


def _officer(factory: sessionmaker[Session]) -> Account:
    from tests.app.console.conftest import add_account

    return add_account(factory, "xss.officer@example.gov.uk", "Officer Checking")
