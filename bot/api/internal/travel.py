"""The FCDO travel advice summary for a country."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, status
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from bot.api.deps import in_session
from bot.api.internal.common import iso2_with_name
from bot.db.models import TravelAdvice

router = APIRouter()

_ADVICE = select(
    TravelAdvice.summary,
    TravelAdvice.advise_against,
    TravelAdvice.advise_against_areas,
    TravelAdvice.last_updated,
    TravelAdvice.url,
    TravelAdvice.is_sample,
).where(TravelAdvice.country == bindparam("country"))


@router.get("/travel-advice")
async def get_travel_advice(
    request: Request, country: Annotated[str, Query(min_length=2, max_length=2)]
) -> dict[str, Any]:
    """Summary, warning level and link for one country."""
    return await in_session(request, lambda session: travel_advice_json(session, country))


def travel_advice_json(session: Session, country: str) -> dict[str, Any]:
    """The answer of :func:`get_travel_advice`."""
    code, name = iso2_with_name(country)
    # A plain row on the session's connection: asked on every travel-safety answer.
    advice = session.connection().execute(_ADVICE, {"country": code}).first()
    if advice is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no travel advice for {code}")
    return {
        "country": code,
        "country_name": name,
        "summary": advice.summary,
        "advise_against": advice.advise_against.value,
        "advise_against_areas": advice.advise_against_areas,
        "last_updated": advice.last_updated.isoformat(),
        "url": advice.url,
        "is_sample": advice.is_sample,
    }
