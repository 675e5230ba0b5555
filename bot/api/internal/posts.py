"""Posts (embassies, high commissions, consulates) serving a country."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from bot.api.deps import in_session
from bot.api.internal.common import iso2_with_name
from bot.db.models import Post

router = APIRouter()

_POSTS = (
    select(
        Post.kind,
        Post.name,
        Post.city,
        Post.address,
        Post.phone,
        Post.email,
        Post.opening_hours,
        Post.timezone,
        Post.emergency_phone,
        Post.is_sample,
    )
    .where(Post.country == bindparam("country"))
    .order_by(Post.rank, Post.id)
)


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
    # Plain rows on the session's connection: asked on every answer about a post.
    posts = list(session.connection().execute(_POSTS, {"country": code}))
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
