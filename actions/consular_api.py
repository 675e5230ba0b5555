"""The one client of the app's internal API used by the action server.

Actions never touch the database: the app owns all data. Every call is short,
token-authenticated, and raises ``ConsularApiError`` on any failure so that an
action can fall back to a holding reply instead of crashing the turn.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import aiohttp

DEFAULT_TIMEOUT_SECONDS = 5.0
TOKEN_HEADER = "X-Internal-Token"


class ConsularApiError(Exception):
    """The internal API could not be reached or answered with an error."""


@dataclass(frozen=True)
class Post:
    """A British embassy, high commission or consulate, as the API returns it."""

    kind: str
    name: str
    city: str
    address: str
    phone: str
    email: str
    opening_hours: str
    timezone: str
    emergency_phone: str
    is_sample: bool


@dataclass(frozen=True)
class CountryPosts:
    """The posts serving one country (the main post first)."""

    country: str
    country_name: str
    posts: List[Post]


@dataclass(frozen=True)
class ApiConfig:
    """Where the internal API is and how to authenticate to it."""

    base_url: str
    token: str
    timeout: float = DEFAULT_TIMEOUT_SECONDS

    @classmethod
    def from_env(cls) -> "ApiConfig":
        """Reads CONSULAR_API_URL and CONSULAR_INTERNAL_API_TOKEN."""
        return cls(
            base_url=os.environ.get("CONSULAR_API_URL", "http://127.0.0.1:8000").rstrip("/"),
            token=os.environ.get("CONSULAR_INTERNAL_API_TOKEN", "dev-internal-token"),
            timeout=float(os.environ.get("CONSULAR_API_TIMEOUT", DEFAULT_TIMEOUT_SECONDS)),
        )


async def _get(config: ApiConfig, path: str, params: Dict[str, str]) -> Dict[str, Any]:
    timeout = aiohttp.ClientTimeout(total=config.timeout)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(
                f"{config.base_url}{path}",
                params=params,
                headers={TOKEN_HEADER: config.token},
            ) as response,
        ):
            if response.status != 200:
                raise ConsularApiError(f"GET {path} answered {response.status}")
            body = await response.json()
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise ConsularApiError(f"GET {path} failed: {exc!r}") from exc
    if not isinstance(body, dict):
        raise ConsularApiError(f"GET {path} returned {type(body).__name__}, not an object")
    return body


async def get_posts(
    country: str, *, city: Optional[str] = None, config: Optional[ApiConfig] = None
) -> CountryPosts:
    """Returns the posts serving ``country`` (ISO alpha-2), main post first."""
    config = config or ApiConfig.from_env()
    params = {"country": country}
    if city:
        params["city"] = city
    body = await _get(config, "/api/internal/posts", params)
    try:
        return CountryPosts(
            country=body["country"],
            country_name=body["country_name"],
            posts=[Post(**post) for post in body["posts"]],
        )
    except (KeyError, TypeError) as exc:
        raise ConsularApiError(f"unexpected posts payload: {exc!r}") from exc
