"""Sample data: validated like real data, labelled as sample, seeded once, complete."""

from __future__ import annotations

import json

import pycountry
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.catalogue import SLUGS
from bot.db.models import Case, GuidanceArticle, GuidanceRevision, Post, TravelAdvice
from bot.db.session import session_scope
from bot.seed import BRITISH_TERRITORIES, SAMPLE_POSTS, seed_all

# The 30 countries British nationals visit most (ONS travel trends, rounded order).
TOP_DESTINATIONS = (
    "ES FR IT PT GR US IE DE NL TR PL CY MT AE TH IN EG MA MX CA AU HR BE CH AT CZ HU BG SE DK"
).split()
KEY = "test-case-key"


@pytest.fixture
def seeded(session_factory: sessionmaker[Session]) -> sessionmaker[Session]:
    with session_scope(session_factory) as session:
        seed_all(session=session, case_key=KEY)
    return session_factory


def test_hand_written_posts_cover_the_top_destinations() -> None:
    document = json.loads(SAMPLE_POSTS.read_text())
    assert set(TOP_DESTINATIONS) <= {row["country"] for row in document["posts"]}
    assert "SAMPLE DATA" in document["notice"]


def test_seed_loads_once(session_factory: sessionmaker[Session]) -> None:
    with session_scope(session_factory) as session:
        first = seed_all(session=session, case_key=KEY)
    with session_scope(session_factory) as session:
        second = seed_all(session=session, case_key=KEY)
    assert first.posts > 0 and first.guidance > 0 and first.cases > 0
    assert (second.posts, second.travel_advice, second.guidance, second.cases) == (0, 0, 0, 0)


@pytest.mark.parametrize("model", [Post, TravelAdvice, GuidanceRevision, Case])
def test_everything_seeded_is_labelled_sample(seeded: sessionmaker[Session], model: type) -> None:
    with seeded() as session:
        unlabelled = session.scalar(
            select(func.count()).select_from(model).where(model.is_sample.is_(False))
        )
    assert unlabelled == 0


def test_every_country_has_a_post_except_british_territories(
    seeded: sessionmaker[Session],
) -> None:
    with seeded() as session:
        covered = set(session.scalars(select(Post.country).distinct()))
    expected = {country.alpha_2 for country in pycountry.countries} - BRITISH_TERRITORIES
    assert covered == expected


def test_main_post_of_spain_is_the_embassy_in_madrid(seeded: sessionmaker[Session]) -> None:
    with seeded() as session:
        madrid = session.scalars(select(Post).where(Post.country == "ES", Post.rank == 0)).one()
    assert (madrid.city, madrid.phone) == ("Madrid", "+34 917 146 300")


def test_every_catalogue_topic_has_a_published_generic_article(
    seeded: sessionmaker[Session],
) -> None:
    with seeded() as session:
        topics = set(
            session.scalars(
                select(GuidanceArticle.topic)
                .join(GuidanceRevision)
                .where(GuidanceArticle.country.is_(None), GuidanceRevision.status == "published")
            )
        )
    assert topics == SLUGS


def test_case_facts_are_stored_hashed(seeded: sessionmaker[Session]) -> None:
    with seeded() as session:
        case = session.scalars(select(Case).where(Case.reference == "CON-2026-004512")).one()
    assert "Sample" not in case.surname_hash and "1985" not in case.date_of_birth_hash
    assert len(case.surname_hash) == len(case.date_of_birth_hash) == 64
