"""A fake Telegram Bot API server: the methods the app calls, on loopback.

Run it with :class:`tests.support.servers.ServerThread` and point the real
python-telegram-bot at it (``telegram_api_base_url = f"{fake.url}/bot"``).
It checks the token in the path, records every call, and can fail the next
``sendMessage`` calls the way Telegram does (500, 429 with ``retry_after``,
403 "bot was blocked by the user").
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

BOT_ID = 987654321
# Parameters python-telegram-bot sends as plain strings (everything else is JSON-encoded).
STRING_PARAMS = frozenset(
    {"text", "url", "secret_token", "callback_query_id", "parse_mode", "ip_address"}
)
LONG_POLL_CAP_SECONDS = 0.5
FAILURES = {
    "500": (500, {"ok": False, "error_code": 500, "description": "Internal Server Error"}),
    "429": (
        429,
        {
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 1",
            "parameters": {"retry_after": 1},
        },
    ),
    "403": (403, {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked"}),
    "chat-not-found": (
        400,
        {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"},
    ),
}


@dataclass(frozen=True)
class ApiCall:
    """One request to the fake, and whether it succeeded."""

    method: str
    params: dict[str, Any]
    ok: bool


@dataclass
class FakeTelegram:
    """State of the fake Bot API: calls, scripted failures, pending updates, the webhook."""

    token: str = f"{BOT_ID}:AAFakeTokenForTestsOnly-0123456789abcdef"
    url: str = ""
    calls: list[ApiCall] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    webhook: dict[str, Any] = field(default_factory=dict)
    # Fail every sendMessage with this kind until cleared (e.g. "403").
    refuse_sends: str | None = None
    _failures: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _message_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(5001))

    # -- what tests use ----------------------------------------------------------

    @property
    def api_base_url(self) -> str:
        return f"{self.url}/bot"

    @property
    def file_base_url(self) -> str:
        return f"{self.url}/file/bot"

    def fail_next_sends(self, count: int, kind: str = "500") -> None:
        """The next ``count`` sendMessage calls fail with ``kind`` (a key of FAILURES)."""
        if kind not in FAILURES:
            raise ValueError(f"unknown failure {kind!r}")
        with self._lock:
            self._failures.extend([kind] * count)

    def push_update(self, update: dict[str, Any]) -> None:
        """Queues an update for getUpdates (polling mode)."""
        with self._lock:
            self.updates.append(update)

    def calls_to(self, method: str) -> list[ApiCall]:
        with self._lock:
            return [call for call in self.calls if call.method == method]

    def sent(self) -> list[dict[str, Any]]:
        """Parameters of every sendMessage Telegram accepted, in order."""
        return [call.params for call in self.calls_to("sendMessage") if call.ok]

    def sent_texts(self) -> list[str]:
        return [str(params["text"]) for params in self.sent()]

    # -- the server ----------------------------------------------------------------

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.api_route("/bot{token}/{method}", methods=["GET", "POST"])
        async def bot_api(token: str, method: str, request: Request) -> JSONResponse:
            if token != self.token:
                return _error(401, "Unauthorized")
            params = await _params(request)
            handler = getattr(self, f"_{method}", None)
            if handler is None:
                self._record(method, params, ok=False)
                return _error(404, "Not Found")
            status_code, body = await handler(params)
            self._record(method, params, ok=status_code == 200)
            return JSONResponse(body, status_code=status_code)

        return app

    def _record(self, method: str, params: dict[str, Any], *, ok: bool) -> None:
        with self._lock:
            self.calls.append(ApiCall(method, params, ok))

    async def _getMe(self, _params: dict[str, Any]) -> tuple[int, dict[str, Any]]:  # noqa: N802
        return _ok(
            {
                "id": BOT_ID,
                "is_bot": True,
                "first_name": "Consular assistant (test)",
                "username": "consular_test_bot",
                "can_join_groups": False,
                "can_read_all_group_messages": False,
                "supports_inline_queries": False,
            }
        )

    async def _sendMessage(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:  # noqa: N802
        with self._lock:
            failure = self._failures.pop(0) if self._failures else self.refuse_sends
        if failure is not None:
            return FAILURES[failure]
        if not params.get("text"):
            return 400, {"ok": False, "error_code": 400, "description": "message text is empty"}
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": params["chat_id"], "type": "private", "first_name": "Citizen"},
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "Consular assistant (test)"},
            "text": params["text"],
        }
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        return _ok(message)

    async def _answerCallbackQuery(self, _params: dict[str, Any]) -> tuple[int, dict[str, Any]]:  # noqa: N802
        return _ok(True)

    async def _setWebhook(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:  # noqa: N802
        with self._lock:
            self.webhook = dict(params)
            if params.get("drop_pending_updates"):
                self.updates.clear()
        return _ok(True)

    async def _deleteWebhook(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:  # noqa: N802
        with self._lock:
            self.webhook = {}
            if params.get("drop_pending_updates"):
                self.updates.clear()
        return _ok(True)

    async def _getWebhookInfo(self, _params: dict[str, Any]) -> tuple[int, dict[str, Any]]:  # noqa: N802
        with self._lock:
            info: dict[str, Any] = {
                "url": self.webhook.get("url", ""),
                "has_custom_certificate": False,
                "pending_update_count": len(self.updates),
            }
            if self.webhook.get("allowed_updates"):
                info["allowed_updates"] = self.webhook["allowed_updates"]
        return _ok(info)

    async def _getUpdates(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:  # noqa: N802
        if self.webhook.get("url"):
            return 409, {
                "ok": False,
                "error_code": 409,
                "description": "Conflict: can't use getUpdates method while webhook is active",
            }
        offset = params.get("offset")
        # Long polling, capped so that a test's shutdown never waits long.
        deadline = time.monotonic() + min(float(params.get("timeout") or 0), LONG_POLL_CAP_SECONDS)
        while True:
            with self._lock:
                if isinstance(offset, int):
                    # An offset confirms every update before it: Telegram forgets them.
                    self.updates = [u for u in self.updates if u["update_id"] >= offset]
                pending = list(self.updates)
            if pending or time.monotonic() >= deadline:
                return _ok(pending)
            await asyncio.sleep(0.02)


def _ok(result: Any) -> tuple[int, dict[str, Any]]:
    return 200, {"ok": True, "result": result}


def _error(code: int, description: str) -> JSONResponse:
    return JSONResponse(
        {"ok": False, "error_code": code, "description": description}, status_code=code
    )


async def _params(request: Request) -> dict[str, Any]:
    """Query and body parameters; python-telegram-bot posts form fields with JSON values."""
    raw: dict[str, str] = dict(request.query_params)
    body = await request.body()
    content_type = request.headers.get("content-type", "")
    if body and content_type.startswith("application/json"):
        return {**raw, **json.loads(body)}
    if body:
        raw.update(parse_qsl(body.decode(), keep_blank_values=True))
    params: dict[str, Any] = {}
    for name, value in raw.items():
        if name in STRING_PARAMS:
            params[name] = value
            continue
        try:
            params[name] = json.loads(value)
        except ValueError:
            params[name] = value
    return params
