"""A fake internal API (aiohttp on loopback) and tracker helpers for action tests."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional

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


@dataclass
class FakeInternalApi:
    """Serves /api/internal/posts; records the requests it got."""

    posts: Dict[str, List[Dict[str, Any]]] = field(default_factory=lambda: {"ES": [MADRID, MALAGA]})
    status: int = 200
    requests: List[Dict[str, Any]] = field(default_factory=list)
    url: str = ""

    async def handle_posts(self, request: web.Request) -> web.Response:
        self.requests.append(
            {"query": dict(request.query), "token": request.headers.get("X-Internal-Token")}
        )
        if request.headers.get("X-Internal-Token") != TOKEN:
            return web.json_response({"detail": "no"}, status=401)
        if self.status != 200:
            return web.json_response({"detail": "broken"}, status=self.status)
        country = request.query["country"]
        names = {"ES": "Spain", "PE": "Peru"}
        return web.json_response(
            {
                "country": country,
                "country_name": names.get(country, country),
                "posts": self.posts.get(country, []),
            }
        )


@pytest.fixture
def internal_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeInternalApi]:
    fake = FakeInternalApi()
    loop = asyncio.new_event_loop()
    app = web.Application()
    app.router.add_get("/api/internal/posts", fake.handle_posts)
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


def tracker(slots: Optional[Dict[str, Any]] = None, text: str = "") -> Tracker:
    """A tracker as the action server receives it, with the given slots."""
    return Tracker(
        sender_id="00000000-0000-4000-8000-000000000000",
        slots=slots or {},
        latest_message={"text": text, "intent": {"name": "contact_embassy"}, "entities": []},
        events=[],
        paused=False,
        followup_action=None,
        active_loop={},
        latest_action_name="post_form",
    )
