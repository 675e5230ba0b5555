"""Sample data for development and demonstration, loaded once into an empty database."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.db.models import Post

logger = logging.getLogger(__name__)

SAMPLE_POSTS = Path(__file__).with_name("sample_posts.json")
POST_FIELDS = (
    "country",
    "kind",
    "name",
    "city",
    "address",
    "phone",
    "email",
    "opening_hours",
    "timezone",
    "emergency_phone",
)
POST_KINDS = {"embassy", "high-commission", "consulate", "consulate-general"}


def read_sample_posts(path: Path = SAMPLE_POSTS) -> list[dict[str, Any]]:
    """The sample posts file, checked field by field (raises ValueError on a bad row)."""
    document = json.loads(path.read_text(encoding="utf-8"))
    rows = document["posts"]
    for number, row in enumerate(rows, start=1):
        missing = [name for name in POST_FIELDS if not str(row.get(name, "")).strip()]
        if missing:
            raise ValueError(f"post {number}: missing {', '.join(missing)}")
        if row["kind"] not in POST_KINDS:
            raise ValueError(f"post {number}: unknown kind {row['kind']!r}")
        ZoneInfo(row["timezone"])
    return list(rows)


def seed_sample_posts(*, session: Session, path: Path = SAMPLE_POSTS) -> int:
    """Loads the sample posts when the table is empty; returns how many were added."""
    if session.scalar(select(func.count()).select_from(Post)):
        return 0
    rank_by_country: dict[str, int] = {}
    rows = read_sample_posts(path)
    for row in rows:
        country = row["country"].upper()
        rank = rank_by_country.get(country, 0)
        rank_by_country[country] = rank + 1
        session.add(
            Post(
                **{name: row[name] for name in POST_FIELDS if name != "country"},
                country=country,
                rank=rank,
                is_sample=True,
            )
        )
    session.flush()
    logger.info("seeded %d sample posts in %d countries", len(rows), len(rank_by_country))
    return len(rows)
