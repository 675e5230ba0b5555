"""The FCDO travel advice summary for a country."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from sqlalchemy import select

from bot.api.deps import SessionDep
from bot.api.internal.common import iso2_with_name
from bot.db.models import TravelAdvice

router = APIRouter()


@router.get("/travel-advice")
def get_travel_advice(
    session: SessionDep, country: Annotated[str, Query(min_length=2, max_length=2)]
) -> dict[str, Any]:
    """Summary, warning level and link for one country."""
    code, name = iso2_with_name(country)
    advice = session.scalars(select(TravelAdvice).where(TravelAdvice.country == code)).first()
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
