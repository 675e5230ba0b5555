"""Rate limits per sender and per endpoint, and a cap on request bodies.

The embedded profile counts in memory; the production profile points
``CONSULAR_RATE_LIMIT_STORAGE`` at Redis so every app instance shares counts
(through the ``limits`` library).

In memory the windows are kept here rather than in ``limits``' memory
storage, which starts a timer thread to expire old hits whenever the last
one has finished (every 10 ms): under load that was a new thread for almost
every message, about half a millisecond of CPU each on the message path.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import HTTPException, status
from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger(__name__)


class MemoryWindows:
    """Moving windows in this process: the times of the hits still inside each window.

    ``hit`` counts a hit unless the window already holds the limit, exactly
    as ``limits``' moving-window strategy does. Keys whose windows have
    emptied are dropped every ``sweep_every`` hits, so one-off senders do not
    accumulate.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, sweep_every: int = 1000):
        self._clock = clock
        self._sweep_every = sweep_every
        self._hits: dict[tuple[str, ...], deque[float]] = {}
        self._windows: dict[tuple[str, ...], float] = {}
        self._since_sweep = 0
        self._lock = threading.Lock()  # the app's worker threads may call too

    def hit(self, item: RateLimitItem, *identifiers: str) -> bool:
        key = (str(item), *identifiers)
        window = float(item.get_expiry())
        now = self._clock()
        with self._lock:
            self._since_sweep += 1
            if self._since_sweep >= self._sweep_every:
                self._sweep(now)
            hits = self._hits.get(key)
            if hits is None:
                hits = self._hits[key] = deque()
                self._windows[key] = window
            while hits and hits[0] <= now - window:
                hits.popleft()
            if len(hits) >= item.amount:
                return False
            hits.append(now)
            return True

    def __len__(self) -> int:
        return len(self._hits)

    def _sweep(self, now: float) -> None:
        self._since_sweep = 0
        stale = [
            key
            for key, hits in self._hits.items()
            if not hits or hits[-1] <= now - self._windows[key]
        ]
        for key in stale:
            del self._hits[key], self._windows[key]


class RateLimiter:
    """Moving-window limits: one for each sender, one for each endpoint as a whole."""

    def __init__(self, *, storage_uri: str, per_sender: str, per_endpoint: str):
        self._limiter: MemoryWindows | MovingWindowRateLimiter
        if storage_uri.startswith("memory://"):
            self._limiter = MemoryWindows()
        else:
            self._limiter = MovingWindowRateLimiter(storage_from_string(storage_uri))
        self._per_sender = parse(per_sender)
        self._per_endpoint = parse(per_endpoint)

    def allow(self, *, endpoint: str, sender: str | None) -> bool:
        """Counts one request; False when it is over either limit."""
        if not self._limiter.hit(self._per_endpoint, "endpoint", endpoint):
            return False
        return sender is None or self._limiter.hit(self._per_sender, "sender", endpoint, sender)

    def enforce(self, *, endpoint: str, sender: str | None) -> None:
        """Raises 429 (with Retry-After) when the request is over a limit."""
        if not self.allow(endpoint=endpoint, sender=sender):
            logger.warning("rate limit hit on %s", endpoint)
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                detail="Too many messages in a short time. Please wait a moment and try again.",
                headers={"Retry-After": "30"},
            )


class BodySizeLimit:
    """Refuses request bodies over ``max_bytes`` with 413, before any handler reads them.

    ``per_path`` gives named paths their own limit (the admin's bulk import
    takes files larger than any message or form).
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, per_path: Mapping[str, int] | None = None):
        self.app = app
        self.default_max_bytes = max_bytes
        self.per_path = dict(per_path or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self.per_path.get(scope["path"], self.default_max_bytes)
        declared = _content_length(scope)
        if declared is not None and declared > max_bytes:
            await _too_large(scope, send, max_bytes)
            return
        received = 0
        refused = False

        async def limited() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    # Answer now; the handler sees a client that went away.
                    refused = True
                    await _too_large(scope, send, max_bytes)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:
                await send(message)

        try:
            await self.app(scope, limited, guarded_send)
        except Exception:
            if not refused:
                raise


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _too_large(scope: Scope, send: Send, max_bytes: int) -> None:
    logger.warning(
        "refused a %s body over %d bytes on %s", scope["method"], max_bytes, scope["path"]
    )
    body = b'{"detail":"The request is too large."}'
    headers: list[Any] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})
