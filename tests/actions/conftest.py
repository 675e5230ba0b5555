"""A fake internal API (aiohttp on loopback) and tracker helpers for action tests."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest
from aiohttp import web
from rasa_sdk import Tracker

TOKEN = "actions-test-token"

MADRID = {
    "kind": "embassy",
    "name": "British Embassy Madrid",
    "city": "Madrid",
    "address": "Paseo de la Castellana 259D, Madrid",
    "phone": "+34 917 146 300",
    "email": "madrid@example.test",
    "opening_hours": "Monday to Friday, 08:30 to 13:30",
    "timezone": "Europe/Madrid",
    "emergency_phone": "+44 20 7008 5000",
    "is_sample": True,
}
MALAGA = {
    **MADRID,
    "kind": "consulate",
    "name": "British Consulate Malaga",
    "city": "Malaga",
    "phone": "+34 952 352 300",
}


GUIDANCE = {
    "topic": "lost-stolen-passport",
    "country": None,
    "country_name": None,
    "title": "Lost or stolen passport",
    "markdown": "Report it to the [police](https://example.org/police).",
    "text": "Report it to the police (https://example.org/police).",
    "source_url": "https://www.gov.uk/emergency-travel-document",
    "last_reviewed": "2026-10-01",
    "revision_id": 7,
    "article_id": 3,
    "review_by": "2027-03-03",
    "is_sample": True,
}
ADVICE = {
    "country": "TH",
    "country_name": "Thailand",
    "summary": "Most visits are trouble-free; take care in the far south.",
    "advise_against": "all-but-essential-parts",
    "advise_against_areas": "Pattani, Yala and Narathiwat",
    "last_updated": "2026-09-14",
    "url": "https://www.gov.uk/foreign-travel-advice/thailand",
    "is_sample": True,
}


@dataclass
class FakeInternalApi:
    """Serves the internal endpoints the actions use; records every request."""

    posts: Dict[str, List[Dict[str, Any]]] = field(default_factory=lambda: {"ES": [MADRID, MALAGA]})
    guidance_published: bool = True
    # Fields an older app does not send (dropped from every guidance answer).
    guidance_missing: Tuple[str, ...] = ()
    advice: Dict[str, Dict[str, Any]] = field(default_factory=lambda: {"TH": ADVICE})
    case_outcome: Dict[str, Any] = field(
        default_factory=lambda: {"outcome": "not_verified", "case": None, "locked_minutes": None}
    )
    status: int = 200
    requests: List[Dict[str, Any]] = field(default_factory=list)
    url: str = ""

    async def _check(self, request: web.Request) -> Optional[web.Response]:
        body = await request.json() if request.can_read_body else None
        self.requests.append(
            {
                "path": request.path,
                "query": dict(request.query),
                "json": body,
                "token": request.headers.get("X-Internal-Token"),
                # The client's address and port: which connection it came on.
                "peer": request.transport.get_extra_info("peername") if request.transport else None,
            }
        )
        if request.headers.get("X-Internal-Token") != TOKEN:
            return web.json_response({"detail": "no"}, status=401)
        if self.status != 200:
            return web.json_response({"detail": "broken"}, status=self.status)
        return None

    async def handle_posts(self, request: web.Request) -> web.Response:
        refused = await self._check(request)
        if refused is not None:
            return refused
        country = request.query["country"]
        names = {"ES": "Spain", "PE": "Peru"}
        return web.json_response(
            {
                "country": country,
                "country_name": names.get(country, country),
                "posts": self.posts.get(country, []),
            }
        )

    async def handle_guidance(self, request: web.Request) -> web.Response:
        refused = await self._check(request)
        if refused is not None:
            return refused
        if not self.guidance_published:
            return web.json_response({"detail": "none"}, status=404)
        country = request.query.get("country")
        body = {
            **GUIDANCE,
            "topic": request.query["topic"],
            "country": country,
            "country_name": "Spain" if country == "ES" else None,
        }
        for name in self.guidance_missing:
            body.pop(name, None)
        return web.json_response(body)

    async def handle_advice(self, request: web.Request) -> web.Response:
        refused = await self._check(request)
        if refused is not None:
            return refused
        found = self.advice.get(request.query["country"])
        if found is None:
            return web.json_response({"detail": "none"}, status=404)
        return web.json_response(found)

    async def handle_verify(self, request: web.Request) -> web.Response:
        refused = await self._check(request)
        if refused is not None:
            return refused
        return web.json_response(self.case_outcome)


@pytest.fixture
def internal_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeInternalApi]:
    fake = FakeInternalApi()
    loop = asyncio.new_event_loop()
    app = web.Application()
    app.router.add_get("/api/internal/posts", fake.handle_posts)
    app.router.add_get("/api/internal/guidance", fake.handle_guidance)
    app.router.add_get("/api/internal/travel-advice", fake.handle_advice)
    app.router.add_post("/api/internal/cases/verify", fake.handle_verify)
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    fake.url = f"http://127.0.0.1:{port}"
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("CONSULAR_API_URL", fake.url)
    monkeypatch.setenv("CONSULAR_INTERNAL_API_TOKEN", TOKEN)
    yield fake
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=5)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=5)


SENDER = "00000000-0000-4000-8000-000000000000"


def user_event(intent: str, text: str = "...") -> Dict[str, Any]:
    """A user message event as it appears in a tracker."""
    return {"event": "user", "text": text, "parse_data": {"intent": {"name": intent}}}


def tracker(
    slots: Optional[Dict[str, Any]] = None,
    text: str = "",
    intent: str = "contact_embassy",
    events: Optional[List[Dict[str, Any]]] = None,
    active_loop: Optional[str] = None,
) -> Tracker:
    """A tracker as the action server receives it, with the given slots and history."""
    return Tracker(
        sender_id=SENDER,
        slots=slots or {},
        latest_message={"text": text, "intent": {"name": intent}, "entities": []},
        events=events or [user_event(intent, text)],
        paused=False,
        followup_action=None,
        active_loop={"name": active_loop} if active_loop else {},
        latest_action_name="post_form",
    )
