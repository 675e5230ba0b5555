"""Guidance for a topic, in a country: the published revision, rendered for channels."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, status
from sqlalchemy.orm import Session

from bot.api.deps import in_session
from bot.api.internal.common import iso2_with_name
from bot.guidance.render import fill, to_plain
from bot.guidance.store import served_revision

router = APIRouter()

TOPIC_PATTERN = r"^[a-z][a-z-]{1,47}$"


@router.get("/guidance")
async def get_guidance(
    request: Request,
    topic: Annotated[str, Query(pattern=TOPIC_PATTERN)],
    country: Annotated[str | None, Query(min_length=2, max_length=2)] = None,
) -> dict[str, Any]:
    """The published guidance a citizen asking about ``topic`` in ``country`` gets.

    Read on every request, so an edit published in the database is what the
    next citizen sees: no restart and no retraining. The revision and article
    ids and the review-by date travel with the answer, so the conversation can
    ask "Was this helpful?" about exactly this revision and officers can see
    when it is due for review.
    """
    return await in_session(request, lambda session: guidance_json(session, topic, country))


def guidance_json(session: Session, topic: str, country: str | None) -> dict[str, Any]:
    """The answer of :func:`get_guidance`."""
    code, name = iso2_with_name(country) if country else (None, None)
    found = served_revision(session=session, topic=topic, country=code)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no published guidance for {topic}")
    markdown = fill(found.body, country_name=name)
    return {
        "topic": found.topic,
        "country": code,
        "country_name": name,
        "article_country": found.article_country,
        "title": found.title,
        "markdown": markdown,
        "text": to_plain(markdown),
        "source_url": found.source_url,
        "last_reviewed": found.last_reviewed.isoformat(),
        "revision_id": found.revision_id,
        "article_id": found.article_id,
        "review_by": found.review_by.isoformat() if found.review_by else None,
        "is_sample": found.is_sample,
    }
