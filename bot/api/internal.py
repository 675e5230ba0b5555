"""The token-protected API the action server uses; it never reaches the database itself."""

from __future__ import annotations

import hmac
import ipaddress
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, status
from sqlalchemy import select

from bot.api.deps import SessionDep
from bot.core.config import Settings
from bot.db.models import Post
from bot.geo.gazetteer import country_name

TOKEN_HEADER = "X-Internal-Token"


def _client_allowed(host: str | None, settings: Settings) -> bool:
    if host is None:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if address.is_loopback:
        return True
    return settings.internal_api_allow_private_networks and address.is_private


def require_internal_token(
    request: Request,
    token: Annotated[str | None, Header(alias=TOKEN_HEADER)] = None,
) -> None:
    """Refuses callers off the private network or without the shared token."""
    settings: Settings = request.app.state.settings
    client = request.client.host if request.client else None
    if not _client_allowed(client, settings):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="Not available from this network.")
    if token is None or not hmac.compare_digest(
        token.encode(), settings.internal_api_token.encode()
    ):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail="Missing or wrong internal token.")


router = APIRouter(
    prefix="/api/internal",
    tags=["internal"],
    dependencies=[Depends(require_internal_token)],
)


def _iso2(value: str) -> str:
    value = value.strip().upper()
    if len(value) != 2 or not value.isalpha():
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_ENTITY,
            detail="country must be an ISO 3166-1 alpha-2 code",
        )
    return value


@router.get("/posts")
def list_posts(
    session: SessionDep,
    country: Annotated[str, Query(min_length=2, max_length=2)],
    city: Annotated[str | None, Query(max_length=100)] = None,
) -> dict[str, Any]:
    """The posts serving a country, main post first; a named city's post first of all."""
    code = _iso2(country)
    try:
        name = country_name(code)
    except KeyError as exc:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_ENTITY, detail=f"{code} is not an ISO 3166-1 country"
        ) from exc
    posts = list(
        session.scalars(select(Post).where(Post.country == code).order_by(Post.rank, Post.id))
    )
    if city:
        wanted = city.strip().casefold()
        posts.sort(key=lambda post: post.city.casefold() != wanted)
    return {
        "country": code,
        "country_name": name,
        "posts": [
            {
                "kind": post.kind,
                "name": post.name,
                "city": post.city,
                "address": post.address,
                "phone": post.phone,
                "email": post.email,
                "opening_hours": post.opening_hours,
                "timezone": post.timezone,
                "emergency_phone": post.emergency_phone,
                "is_sample": post.is_sample,
            }
            for post in posts
        ],
    }
