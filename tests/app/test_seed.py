"""Sample posts: labelled as sample, seeded once, covering the main destinations."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.db.models import Post
from bot.db.session import session_scope
from bot.seed import read_sample_posts, seed_sample_posts

# The 30 countries British nationals visit most (ONS travel trends, rounded order).
TOP_DESTINATIONS = [
    "ES",
    "FR",
    "IT",
    "PT",
    "GR",
    "US",
    "IE",
    "DE",
    "NL",
    "TR",
    "PL",
    "CY",
    "MT",
    "AE",
    "TH",
    "IN",
    "EG",
    "MA",
    "MX",
    "CA",
    "AU",
    "HR",
    "BE",
    "CH",
    "AT",
    "CZ",
    "HU",
    "BG",
    "SE",
    "DK",
]


def test_sample_posts_cover_the_top_destinations() -> None:
    countries = {row["country"] for row in read_sample_posts()}
    assert set(TOP_DESTINATIONS) <= countries


def test_seed_loads_once_and_marks_sample(session_factory: sessionmaker[Session]) -> None:
    with session_scope(session_factory) as session:
        first = seed_sample_posts(session=session)
    with session_scope(session_factory) as session:
        second = seed_sample_posts(session=session)
        count = session.scalar(select(func.count()).select_from(Post))
        unlabelled = session.scalar(select(func.count()).where(Post.is_sample.is_(False)))
    assert first == count > 0
    assert second == 0
    assert unlabelled == 0


def test_main_post_of_each_country_has_rank_zero(session_factory: sessionmaker[Session]) -> None:
    with session_scope(session_factory) as session:
        seed_sample_posts(session=session)
        madrid = session.scalars(select(Post).where(Post.country == "ES", Post.rank == 0)).one()
    assert madrid.city == "Madrid"
