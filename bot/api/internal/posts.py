"""Posts (embassies, high commissions, consulates) serving a country."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.api.deps import in_session
from bot.api.internal.common import iso2_with_name
from bot.db.models import Post

router = APIRouter()


@router.get("/posts")
async def list_posts(
    request: Request,
    country: Annotated[str, Query(min_length=2, max_length=2)],
    city: Annotated[str | None, Query(max_length=100)] = None,
) -> dict[str, Any]:
    """The posts serving a country, main post first; a named city's post first of all."""
    return await in_session(request, lambda session: posts_json(session, country, city))


def posts_json(session: Session, country: str, city: str | None) -> dict[str, Any]:
    """The answer of :func:`list_posts`."""
    code, name = iso2_with_name(country)
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
