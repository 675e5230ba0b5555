"""The one client of the app's internal API used by the action server.

Actions never touch the database: the app owns all data. Every call is short,
token-authenticated, and raises ``ConsularApiError`` on any failure so that an
action can fall back to a holding reply instead of crashing the turn.
"""

from __future__ import annotations

import asyncio
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


class NotFound(ConsularApiError):
    """The API answered 404: it has nothing for this request."""


# Seconds an idle connection to the app is kept open. The app's server
# (uvicorn) closes idle connections after 5 s; closing them first here means a
# request never goes out on a connection the app has just closed.
KEEPALIVE_SECONDS = 2.0


class _Sessions:
    """One HTTP session (and its pool of kept connections) per event loop.

    A new session per call cost a TCP connection set up and torn down on both
    sides for every lookup, on the path of most replies. The action server
    runs one loop; tests may run several, one after another.
    """

    session: Optional[aiohttp.ClientSession] = None
    loop: Optional[asyncio.AbstractEventLoop] = None

    @classmethod
    def current(cls) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        session = cls.session
        if session is None or session.closed or cls.loop is not loop:
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(keepalive_timeout=KEEPALIVE_SECONDS)
            )
            cls.session, cls.loop = session, loop
        return session


async def _request(
    config: ApiConfig,
    method: str,
    path: str,
    *,
    params: Optional[Dict[str, str]] = None,
    json: Optional[Dict[str, Any]] = None,
) -> Dict[str, Any]:
    timeout = aiohttp.ClientTimeout(total=config.timeout)
    try:
        async with _Sessions.current().request(
            method,
            f"{config.base_url}{path}",
            params=params,
            json=json,
            headers={TOKEN_HEADER: config.token},
            timeout=timeout,
        ) as response:
            if response.status == 404:
                raise NotFound(f"{method} {path} answered 404")
            if response.status not in (200, 201):
                raise ConsularApiError(f"{method} {path} answered {response.status}")
            body = await response.json()
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise ConsularApiError(f"{method} {path} failed: {exc!r}") from exc
    if not isinstance(body, dict):
        raise ConsularApiError(f"{method} {path} returned {type(body).__name__}, not an object")
    return body


async def _get(config: ApiConfig, path: str, params: Dict[str, str]) -> Dict[str, Any]:
    return await _request(config, "GET", path, params=params)


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


@dataclass(frozen=True)
class Guidance:
    """The published guidance for a topic (and country), ready for a reply."""

    topic: str
    country: Optional[str]
    country_name: Optional[str]
    title: str
    markdown: str
    text: str
    source_url: str
    last_reviewed: str
    is_sample: bool
    # Which revision this is and when it is due for review, so the app can ask
    # "Was this helpful?" about it and show officers its review-by date. An
    # older app sends neither: both are then None.
    revision_id: Optional[int] = None
    article_id: Optional[int] = None
    review_by: Optional[str] = None


def _optional_id(raw: Any) -> Optional[int]:
    """A positive integer id, or None for anything else (bool, text, missing)."""
    if isinstance(raw, int) and not isinstance(raw, bool) and raw > 0:
        return raw
    return None


def _optional_text(raw: Any) -> Optional[str]:
    return raw if isinstance(raw, str) and raw else None


async def get_guidance(
    topic: str, country: Optional[str] = None, *, config: Optional[ApiConfig] = None
) -> Guidance:
    """The guidance a citizen asking about ``topic`` in ``country`` is shown."""
    config = config or ApiConfig.from_env()
    params = {"topic": topic}
    if country:
        params["country"] = country
    body = await _get(config, "/api/internal/guidance", params)
    try:
        return Guidance(
            topic=body["topic"],
            country=body["country"],
            country_name=body["country_name"],
            title=body["title"],
            markdown=body["markdown"],
            text=body["text"],
            source_url=body["source_url"],
            last_reviewed=body["last_reviewed"],
            is_sample=body["is_sample"],
            revision_id=_optional_id(body.get("revision_id")),
            article_id=_optional_id(body.get("article_id")),
            review_by=_optional_text(body.get("review_by")),
        )
    except KeyError as exc:
        raise ConsularApiError(f"unexpected guidance payload: {exc!r}") from exc


@dataclass(frozen=True)
class TravelAdvice:
    """The travel advice summary for one country."""

    country: str
    country_name: str
    summary: str
    advise_against: str
    advise_against_areas: str
    last_updated: str
    url: str
    is_sample: bool


async def get_travel_advice(country: str, *, config: Optional[ApiConfig] = None) -> TravelAdvice:
    """Summary, warning level and link for ``country``."""
    config = config or ApiConfig.from_env()
    body = await _get(config, "/api/internal/travel-advice", {"country": country})
    try:
        return TravelAdvice(**{name: body[name] for name in TravelAdvice.__dataclass_fields__})
    except KeyError as exc:
        raise ConsularApiError(f"unexpected travel advice payload: {exc!r}") from exc


@dataclass(frozen=True)
class CaseLookup:
    """The answer to an identity check: verified (with status), not verified, or locked."""

    outcome: str
    status: Optional[str] = None
    next_step: Optional[str] = None
    reference: Optional[str] = None
    locked_minutes: Optional[int] = None


async def verify_case(
    *,
    reference: str,
    surname: str,
    date_of_birth: str,
    conversation_id: str,
    config: Optional[ApiConfig] = None,
) -> CaseLookup:
    """Asks the app to check the facts; only status and next step ever come back."""
    config = config or ApiConfig.from_env()
    body = await _request(
        config,
        "POST",
        "/api/internal/cases/verify",
        json={
            "reference": reference,
            "surname": surname,
            "date_of_birth": date_of_birth,
            "conversation_id": conversation_id,
        },
    )
    case = body.get("case") or {}
    return CaseLookup(
        outcome=str(body.get("outcome")),
        status=case.get("status"),
        next_step=case.get("next_step"),
        reference=case.get("reference"),
        locked_minutes=body.get("locked_minutes"),
    )
