"""Validation shared by the internal endpoints."""

from __future__ import annotations

from fastapi import HTTPException, status

from bot.geo.gazetteer import country_name


def iso2_with_name(raw: str) -> tuple[str, str]:
    """An upper-case ISO 3166-1 alpha-2 code and its display name, or a 422."""
    code = raw.strip().upper()
    try:
        if len(code) != 2 or not code.isalpha():
            raise KeyError(code)
        return code, country_name(code)
    except KeyError as exc:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_ENTITY,
            detail="country must be an ISO 3166-1 alpha-2 code",
        ) from exc
