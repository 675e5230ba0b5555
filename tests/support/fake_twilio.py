"""A fake Twilio REST API: just the Messages resource the app creates replies with.

The real ``twilio`` library is pointed at it (``CONSULAR_TWILIO_API_BASE_URL``),
so requests arrive exactly as Twilio would get them: HTTP basic auth with the
account SID and auth token, form-encoded fields (``To``, ``From``, ``Body``,
``StatusCallback``, ``ContentSid``, ``ContentVariables``). Tests read what was
sent from :attr:`FakeTwilio.messages` and script failures.
"""

from __future__ import annotations

import base64
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "fake-twilio-auth-token-0123456789"


@dataclass
class ScriptedError:
    """One scripted failure: an HTTP status and, for a Twilio error, its code."""

    status: int
    code: int | None = None
    message: str = "scripted failure"


@dataclass
class FakeTwilio:
    """State of the fake: messages accepted, attempts seen, failures to come."""

    account_sid: str = ACCOUNT_SID
    auth_token: str = AUTH_TOKEN
    messages: list[dict[str, Any]] = field(default_factory=list)
    attempts: int = 0
    unauthorised: int = 0
    _script: list[ScriptedError] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, count: int, *, status: int = 500) -> None:
        """The next ``count`` calls fail with a bare HTTP error (500 by default)."""
        with self._lock:
            self._script.extend(ScriptedError(status) for _ in range(count))

    def error_next(self, code: int, *, status: int = 400, message: str = "refused") -> None:
        """The next call gets a Twilio error body with ``code`` (e.g. 63016 with 400)."""
        with self._lock:
            self._script.append(ScriptedError(status, code, message))

    def sent_to(self, to: str) -> list[dict[str, Any]]:
        """The messages accepted for one recipient, oldest first."""
        with self._lock:
            return [message for message in self.messages if message["To"] == to]

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/2010-04-01/Accounts/{account_sid}/Messages.json")
        async def create_message(account_sid: str, request: Request) -> JSONResponse:
            if not self._authorised(request, account_sid):
                with self._lock:
                    self.unauthorised += 1
                return _error(401, 20003, "Authenticate")
            form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
            with self._lock:
                self.attempts += 1
                scripted = self._script.pop(0) if self._script else None
            if scripted is not None:
                if scripted.code is None:
                    return JSONResponse({"message": "Internal error"}, status_code=scripted.status)
                return _error(scripted.status, scripted.code, scripted.message)
            if "To" not in form or not ({"Body", "ContentSid"} & form.keys()):
                return _error(400, 21619, "A text message body or media urls must be specified.")
            resource = self._resource(account_sid, form)
            with self._lock:
                self.messages.append({**form, "sid": resource["sid"]})
            return JSONResponse(resource, status_code=201)

        return app

    def _authorised(self, request: Request, account_sid: str) -> bool:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        given = request.headers.get("authorization", "")
        return account_sid == self.account_sid and secrets.compare_digest(
            given, f"Basic {expected}"
        )

    def _resource(self, account_sid: str, form: dict[str, str]) -> dict[str, Any]:
        sid = "SM" + secrets.token_hex(16)
        now = format_datetime(datetime.now(UTC), usegmt=True)
        return {
            "sid": sid,
            "account_sid": account_sid,
            "api_version": "2010-04-01",
            "body": form.get("Body", ""),
            "date_created": now,
            "date_updated": now,
            "date_sent": None,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": form.get("From"),
            "to": form.get("To"),
            "messaging_service_sid": None,
            "num_media": "0",
            "num_segments": "1",
            "price": None,
            "price_unit": "USD",
            "status": "queued",
            "subresource_uris": {
                "media": f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}/Media.json"
            },
            "uri": f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json",
        }


def _error(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse(
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
        status_code=status,
    )
