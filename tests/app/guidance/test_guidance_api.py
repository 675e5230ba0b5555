"""Which guidance is served: published only, the country's own first, live edits."""

from __future__ import annotations

from datetime import date

import pycountry
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from bot.catalogue import SLUGS
from bot.db.models import GuidanceRevision, RevisionStatus
from bot.db.session import session_scope
from bot.guidance.store import (
    GuidanceError,
    RevisionDraft,
    add_revision,
    create_article,
    publish_revision,
    served_revision,
)
from bot.seed import seed_all
from tests.app.conftest import INTERNAL_TOKEN

AUTH = {"X-Internal-Token": INTERNAL_TOKEN}


def draft(body: str) -> RevisionDraft:
    return RevisionDraft(
        title="Lost passport",
        body=body,
        source_url="https://www.gov.uk/emergency-travel-document",
        last_reviewed=date(2026, 10, 1),
    )


@pytest.fixture
def articles(session_factory: sessionmaker[Session]) -> dict[str, int]:
    """A generic article and a Spanish one, each with one published revision."""
    with session_scope(session_factory) as session:
        generic = create_article(session=session, topic="lost-stolen-passport", country=None)
        spanish = create_article(session=session, topic="lost-stolen-passport", country="ES")
        g1 = add_revision(
            session=session,
            article=generic,
            draft=draft("Tell the police in {country_name}."),
            author="editor",
        )
        s1 = add_revision(
            session=session,
            article=spanish,
            draft=draft("Go to the Policia Nacional."),
            author="editor",
        )
        publish_revision(session=session, revision=g1, reviewer="reviewer")
        publish_revision(session=session, revision=s1, reviewer="reviewer")
        return {"generic": generic.id, "spanish": spanish.id, "g1": g1.id, "s1": s1.id}


def guidance(client: TestClient, **params: str):
    return client.get("/api/internal/guidance", params=params, headers=AUTH)


def test_the_countrys_own_article_beats_the_generic_one(
    client: TestClient, articles: dict[str, int]
) -> None:
    body = guidance(client, topic="lost-stolen-passport", country="ES").json()
    assert body["markdown"] == "Go to the Policia Nacional."
    assert (body["country"], body["article_country"]) == ("ES", "ES")
    assert body["last_reviewed"] == "2026-10-01"
    assert body["source_url"] == "https://www.gov.uk/emergency-travel-document"


def test_an_answer_names_its_revision_article_and_review_by_date(
    client: TestClient, session_factory: sessionmaker[Session], articles: dict[str, int]
) -> None:
    body = guidance(client, topic="lost-stolen-passport", country="ES").json()
    assert (body["revision_id"], body["article_id"]) == (articles["s1"], articles["spanish"])
    assert body["review_by"] is None  # not set on this revision
    with session_scope(session_factory) as session:
        session.execute(
            update(GuidanceRevision)
            .where(GuidanceRevision.id == articles["s1"])
            .values(review_by=date(2027, 3, 3))
        )
    body = guidance(client, topic="lost-stolen-passport", country="ES").json()
    assert body["review_by"] == "2027-03-03"


def test_other_countries_get_the_generic_article_with_their_name(
    client: TestClient, articles: dict[str, int]
) -> None:
    body = guidance(client, topic="lost-stolen-passport", country="PT").json()
    assert body["markdown"] == "Tell the police in Portugal."
    assert (body["country"], body["article_country"]) == ("PT", None)
    generic = guidance(client, topic="lost-stolen-passport").json()
    assert generic["markdown"] == "Tell the police in the country."


@pytest.mark.parametrize("status", [RevisionStatus.DRAFT, RevisionStatus.IN_REVIEW])
def test_a_newer_unpublished_revision_is_never_served(
    client: TestClient,
    session_factory: sessionmaker[Session],
    articles: dict[str, int],
    status: RevisionStatus,
) -> None:
    with session_scope(session_factory) as session:
        spanish = session.get(GuidanceRevision, articles["s1"])
        assert spanish is not None
        newer = add_revision(
            session=session, article=spanish.article, draft=draft("NOT YET"), author="editor"
        )
        newer.status = status
    body = guidance(client, topic="lost-stolen-passport", country="ES").json()
    assert body["markdown"] == "Go to the Policia Nacional."


def test_an_archived_revision_is_never_served(
    client: TestClient, session_factory: sessionmaker[Session], articles: dict[str, int]
) -> None:
    with session_scope(session_factory) as session:
        session.execute(
            update(GuidanceRevision)
            .where(GuidanceRevision.id == articles["s1"])
            .values(status=RevisionStatus.ARCHIVED)
        )
    body = guidance(client, topic="lost-stolen-passport", country="ES").json()
    assert body["article_country"] is None  # the Spanish article has nothing published


def test_publishing_a_new_revision_archives_the_old_one(
    client: TestClient, session_factory: sessionmaker[Session], articles: dict[str, int]
) -> None:
    with session_scope(session_factory) as session:
        spanish = session.get(GuidanceRevision, articles["s1"])
        assert spanish is not None
        newer = add_revision(
            session=session, article=spanish.article, draft=draft("Version two."), author="ed"
        )
        publish_revision(session=session, revision=newer, reviewer="rev")
    with session_factory() as session:
        statuses = session.scalars(
            select(GuidanceRevision.status)
            .where(GuidanceRevision.article_id == articles["spanish"])
            .order_by(GuidanceRevision.number)
        ).all()
    assert statuses == [RevisionStatus.ARCHIVED, RevisionStatus.PUBLISHED]
    assert guidance(client, topic="lost-stolen-passport", country="ES").json()["markdown"] == (
        "Version two."
    )


def test_an_edit_in_the_database_is_served_on_the_next_request(
    client: TestClient, session_factory: sessionmaker[Session], articles: dict[str, int]
) -> None:
    assert "Policia" in guidance(client, topic="lost-stolen-passport", country="ES").text
    with session_scope(session_factory) as session:
        session.execute(
            update(GuidanceRevision)
            .where(GuidanceRevision.id == articles["s1"])
            .values(body="Corrected: go to any police station.")
        )
    body = guidance(client, topic="lost-stolen-passport", country="ES").json()
    assert body["markdown"] == "Corrected: go to any police station."


def test_a_topic_with_nothing_published_is_404(client: TestClient) -> None:
    assert guidance(client, topic="emergency-money").status_code == 404


@pytest.mark.parametrize(
    "params", [{"topic": "Bad Topic"}, {"topic": "travel-advice", "country": "Z1"}]
)
def test_bad_guidance_queries_are_422(client: TestClient, params: dict[str, str]) -> None:
    assert guidance(client, **params).status_code == 422


def test_a_second_generic_article_for_a_topic_is_refused(
    session_factory: sessionmaker[Session], articles: dict[str, int]
) -> None:
    with session_scope(session_factory) as session, pytest.raises(GuidanceError):
        create_article(session=session, topic="lost-stolen-passport", country=None)


def test_every_topic_and_every_country_has_an_answer(
    session_factory: sessionmaker[Session],
) -> None:
    with session_scope(session_factory) as session:
        seed_all(session=session, case_key="k")
    countries = [country.alpha_2 for country in pycountry.countries]
    with session_factory() as session:
        missing = [
            (topic, country)
            for topic in sorted(SLUGS)
            for country in [None, *countries]
            if served_revision(session=session, topic=topic, country=country) is None
        ]
    assert missing == []


def test_every_country_has_travel_advice_or_a_post(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    with session_scope(session_factory) as session:
        seed_all(session=session, case_key="k")
    for country in pycountry.countries:
        advice = client.get(
            "/api/internal/travel-advice", params={"country": country.alpha_2}, headers=AUTH
        )
        assert advice.status_code == (404 if country.alpha_2 == "GB" else 200), country.alpha_2
