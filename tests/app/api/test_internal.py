"""The internal API the action server uses: token, network and posts."""

from __future__ import annotations

from datetime import date

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker

from bot.db.models import AdviseAgainst, Conversation, Owner
from bot.db.session import session_scope
from bot.main import create_app
from bot.seed import seed_all, seed_sample_posts
from tests.app.conftest import INTERNAL_TOKEN

AUTH = {"X-Internal-Token": INTERNAL_TOKEN}


@pytest.fixture
def seeded(session_factory: sessionmaker[Session]) -> None:
    with session_scope(session_factory) as session:
        seed_sample_posts(session=session)


def test_posts_need_the_token(client: TestClient, seeded: None) -> None:
    assert client.get("/api/internal/posts", params={"country": "ES"}).status_code == 401
    wrong = {"X-Internal-Token": INTERNAL_TOKEN + "x"}
    assert (
        client.get("/api/internal/posts", params={"country": "ES"}, headers=wrong).status_code
        == 401
    )


def test_posts_refuse_a_public_network_even_with_the_token(settings, seeded: None) -> None:
    # A public client address, presented in process only: no traffic leaves the test.
    with TestClient(create_app(settings), client=("145.100.0.1", 4000)) as outsider:
        response = outsider.get("/api/internal/posts", params={"country": "ES"}, headers=AUTH)
    assert response.status_code == 403


def test_posts_for_spain_list_the_embassy_first(client: TestClient, seeded: None) -> None:
    response = client.get("/api/internal/posts", params={"country": "es"}, headers=AUTH)
    assert response.status_code == 200
    body = response.json()
    assert (body["country"], body["country_name"]) == ("ES", "Spain")
    main = body["posts"][0]
    assert main["city"] == "Madrid" and main["kind"] == "embassy"
    assert main["phone"] == "+34 917 146 300"
    assert main["is_sample"] is True
    assert len(body["posts"]) > 1


def test_posts_put_the_named_city_first(client: TestClient, seeded: None) -> None:
    response = client.get(
        "/api/internal/posts", params={"country": "ES", "city": "barcelona"}, headers=AUTH
    )
    assert response.json()["posts"][0]["city"] == "Barcelona"


def test_posts_for_a_british_territory_is_an_empty_list(client: TestClient, seeded: None) -> None:
    # Gibraltar has no British embassy: the action gives the 24-hour line instead.
    response = client.get("/api/internal/posts", params={"country": "GI"}, headers=AUTH)
    assert response.status_code == 200
    assert response.json()["posts"] == []


@pytest.mark.parametrize("country", ["E", "ESP", "1A", "", "ZZ"])
def test_posts_reject_a_bad_country_code(client: TestClient, country: str) -> None:
    response = client.get("/api/internal/posts", params={"country": country}, headers=AUTH)
    assert response.status_code == 422


def test_an_action_can_queue_a_conversation_once(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    session_id = client.post("/api/webchat/sessions").json()["session_id"]
    body = {"conversation_id": session_id, "reason": "needs-officer", "summary": "help"}
    first = client.post("/api/internal/handoffs", json=body, headers=AUTH)
    urgent = client.post("/api/internal/handoffs", json={**body, "urgent": True}, headers=AUTH)
    assert first.status_code == urgent.status_code == 201
    assert first.json()["handoff_id"] == urgent.json()["handoff_id"]
    assert urgent.json()["priority"] == 10  # escalated, not queued twice
    with session_factory() as session:
        conversation = session.get(Conversation, session_id)
        assert conversation is not None and conversation.owner == Owner.QUEUE


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"conversation_id": "nope", "reason": "needs-officer"}, 404),
        ({"conversation_id": "x", "reason": "Bad Reason!"}, 422),
        ({"reason": "needs-officer"}, 422),
    ],
)
def test_bad_handoff_requests_are_refused(client: TestClient, body: dict, status: int) -> None:
    assert client.post("/api/internal/handoffs", json=body, headers=AUTH).status_code == status


def test_post_and_travel_advice_lookups_read_plain_rows(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    # The action server asks on every answer naming a post or the travel
    # advice: plain rows on the session's connection, nothing through the ORM.
    with session_scope(session_factory) as session:
        seed_all(session=session, case_key="k")
    orm_statements: list[str] = []

    def on_orm_execute(state: ORMExecuteState) -> None:
        orm_statements.append(str(state.statement))

    event.listen(Session, "do_orm_execute", on_orm_execute)
    try:
        posts = client.get("/api/internal/posts", params={"country": "TH"}, headers=AUTH)
        advice = client.get("/api/internal/travel-advice", params={"country": "th"}, headers=AUTH)
    finally:
        event.remove(Session, "do_orm_execute", on_orm_execute)
    assert orm_statements == []
    assert posts.status_code == advice.status_code == 200
    assert posts.json()["posts"][0]["city"] == "Bangkok"
    body = advice.json()
    assert (body["country"], body["country_name"]) == ("TH", "Thailand")
    assert body["advise_against"] in {level.value for level in AdviseAgainst}
    assert body["url"].startswith("https://") and body["is_sample"] is True
    date.fromisoformat(body["last_updated"])
