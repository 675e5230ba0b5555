"""The queue page: order, what each entry shows, and citizen text escaped."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tests.app.console.conftest import queue_conversation

ROW = re.compile(r'<tr class="govuk-table__row[^"]*" data-conversation-id="([^"]+)"')


def test_queue_lists_urgent_first_then_the_longest_waiting(
    officer_client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    old_routine, _ = queue_conversation(session_factory, minutes_ago=30, summary="old routine")
    new_routine, _ = queue_conversation(session_factory, minutes_ago=5, summary="new routine")
    new_urgent, _ = queue_conversation(session_factory, urgent=True, minutes_ago=1)
    old_urgent, _ = queue_conversation(session_factory, urgent=True, minutes_ago=10)
    page = officer_client.get("/console")
    assert ROW.findall(page.text) == [old_urgent, new_urgent, old_routine, new_routine]
    # The live fragment has the same order.
    assert ROW.findall(officer_client.get("/console/queue").text) == ROW.findall(page.text)


def test_queue_entry_shows_topic_country_channel_wait_summary_and_owner(
    officer_client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    queue_conversation(
        session_factory, urgent=True, minutes_ago=12, summary="my son has been arrested in Dubai"
    )
    page = officer_client.get("/console").text
    assert "Urgent" in page
    assert "Arrest detention" in page
    assert "United Arab Emirates (AE)" in page
    assert "Web chat" in page
    assert "12 min" in page
    assert "my son has been arrested in Dubai" in page
    assert "Waiting" in page  # nobody owns it yet


def test_citizen_text_is_escaped_in_the_queue(
    officer_client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    queue_conversation(session_factory, summary="<script>alert('x')</script><b>hi</b>")
    page = officer_client.get("/console")
    assert "<script>alert(" not in page.text
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&lt;b&gt;hi&lt;/b&gt;" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    fragment = officer_client.get("/console/queue").text
    assert "<script>alert(" not in fragment


def test_an_empty_queue_says_so(officer_client: TestClient) -> None:
    assert "Nobody is waiting" in officer_client.get("/console").text
