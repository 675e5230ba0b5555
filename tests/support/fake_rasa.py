"""A fake Rasa server (REST channel and status) and a fake action server health check.

Tests script what the bot says and can take either server "down" (HTTP 500)
or answer with nothing, as Rasa does when the action server is unreachable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

Responder = Callable[[str, str], list[dict[str, Any]]]


def echo_responder(sender: str, text: str) -> list[dict[str, Any]]:
    """Default behaviour: one small-talk reply naming what was heard."""
    return [{"recipient_id": sender, "text": f"You said: {text}"}]


@dataclass
class FakeRasa:
    """State of the fake: calls received and how to answer."""

    token: str = "test-rasa-token"
    responder: Responder = echo_responder
    down: bool = False
    calls: list[dict[str, Any]] = field(default_factory=list)
    on_call: Callable[[str, str], None] | None = None
    # Seconds each message takes to answer, and the most answered at once.
    delay: float = 0.0
    in_flight: int = 0
    most_in_flight: int = 0

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/webhooks/rest/webhook")
        async def webhook(request: Request) -> JSONResponse:
            body = await request.json()
            self.calls.append(body)
            if self.down:
                return JSONResponse({"error": "down"}, status_code=500)
            if self.on_call is not None:
                self.on_call(body["sender"], body["message"])
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            try:
                await asyncio.sleep(self.delay)
            finally:
                self.in_flight -= 1
            return JSONResponse(self.responder(body["sender"], body["message"]))

        @app.get("/status")
        async def status(token: str = "") -> JSONResponse:
            if token != self.token:
                return JSONResponse({"message": "unauthorised"}, status_code=401)
            if self.down:
                return JSONResponse({"error": "down"}, status_code=500)
            return JSONResponse({"model_file": "models/consular.tar.gz", "model_id": "fake"})

        return app


@dataclass
class FakeActionServer:
    """Only the health endpoint the app's /healthz reads."""

    down: bool = False

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/health")
        async def health() -> JSONResponse:
            if self.down:
                return JSONResponse({"status": "down"}, status_code=500)
            return JSONResponse({"status": "ok"})

        return app
