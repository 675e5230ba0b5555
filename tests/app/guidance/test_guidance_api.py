"""Which guidance is served: published only, the country's own first, live edits."""

from __future__ import annotations

from datetime import date

import pycountry
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select, update
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker

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
    return make_articles(session_factory)


def make_articles(session_factory: sessionmaker[Session]) -> dict[str, int]:
    """What :func:`articles` makes, in any database; returns the ids."""
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


def test_the_lookup_reads_plain_rows_and_loads_nothing_through_the_orm(
    client: TestClient, articles: dict[str, int]
) -> None:
    # The action server asks on every guidance answer: one prepared
    # statement on the session's connection, no ORM entity loading.
    orm_statements: list[str] = []

    def on_orm_execute(state: ORMExecuteState) -> None:
        orm_statements.append(str(state.statement))

    event.listen(Session, "do_orm_execute", on_orm_execute)
    try:
        spanish = guidance(client, topic="lost-stolen-passport", country="ES").json()
        french = guidance(client, topic="lost-stolen-passport", country="FR").json()
        generic = guidance(client, topic="lost-stolen-passport").json()
    finally:
        event.remove(Session, "do_orm_execute", on_orm_execute)
    assert orm_statements == []
    assert [body["revision_id"] for body in (spanish, french, generic)] == [
        articles["s1"],
        articles["g1"],
        articles["g1"],
    ]
    assert french["markdown"] == "Tell the police in France."
    assert (generic["article_country"], generic["country"]) == (None, None)


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


def test_the_served_revision_is_chosen_the_same_on_sqlite_and_postgresql(
    any_factory: sessionmaker[Session],
) -> None:
    ids = make_articles(any_factory)
    with session_scope(any_factory) as session:
        found = {
            country: served_revision(session=session, topic="lost-stolen-passport", country=country)
            for country in ("ES", "FR", None)
        }
        assert served_revision(session=session, topic="no-such-topic", country="ES") is None
    assert {country: served.revision_id for country, served in found.items() if served} == {
        "ES": ids["s1"],
        "FR": ids["g1"],
        None: ids["g1"],
    }
