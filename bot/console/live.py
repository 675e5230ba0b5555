"""The console's websocket: queue changes for everyone, messages for an open conversation.

``/console/ws`` sends every queue event; with ``?conversation=<id>`` it also
sends that conversation's new messages and delivery states (what the
message path and the outbox publish on its key). It needs a signed-in
session cookie and a same-origin request; it closes with 4401 when the
session ends or expires. Watching does not keep a session alive: the page
reports the officer's own activity (typing, clicking) at most once a minute,
and that does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, WebSocket
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocketDisconnect

from bot.console import auth, views
from bot.console.events import CONSOLE_CHANNEL
from bot.console.web import _UUID, CONSOLE_ROLES, PREFIX, console_state
from bot.conversations.events import EventHub
from bot.db.models import Message, Sender, utcnow
from bot.db.session import session_scope

logger = logging.getLogger(__name__)

SIGNED_OUT = 4401
CHECK_SECONDS = 30.0
# Conversation events a console needs (the web chat's own kinds, nothing else).
CONVERSATION_EVENTS = frozenset({"message", "delivery"})

router = APIRouter(prefix=PREFIX)


def _same_origin(websocket: WebSocket) -> bool:
    # SameSite=Strict keeps the cookie off cross-site requests already; this
    # refuses a cross-site page that reaches the socket some other way.
    origin = websocket.headers.get("origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc == websocket.headers.get("host")


@router.websocket("/ws")
async def console_socket(websocket: WebSocket, conversation: str = "") -> None:
    """Pushes queue events, and the open conversation's messages and delivery states."""
    state = console_state(websocket)
    key = state.signer.session_key(websocket.cookies.get(auth.SESSION_COOKIE))
    factory = websocket.app.state.session_factory

    def alive(touch: bool) -> bool:
        with session_scope(factory) as session:
            return _load(session, key, state.policy, touch) is not None

    if not _same_origin(websocket) or not await run_in_threadpool(alive, False):
        await websocket.close(code=SIGNED_OUT)
        return

    def timezone() -> str:
        with session_scope(factory) as session:
            row = auth.load(session=session, key=key, policy=state.policy, touch=False)
            return row.officer.timezone if row is not None and row.officer else "Europe/London"

    def with_source(event: dict[str, Any], zone: str) -> dict[str, Any]:
        with session_scope(factory) as session:
            return _with_guidance_source(session, event, zone)

    zone = await run_in_threadpool(timezone)
    await websocket.accept()
    hub: EventHub = websocket.app.state.hub
    merged: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    keys = [CONSOLE_CHANNEL]
    if _UUID.match(conversation):
        keys.append(conversation)
    pumps = [asyncio.create_task(_pump(hub, name, merged)) for name in keys]
    reader = asyncio.create_task(_read(websocket, lambda: run_in_threadpool(alive, True)))
    getter: asyncio.Task[dict[str, Any]] | None = None
    try:
        while not reader.done():
            getter = asyncio.create_task(merged.get())
            done, _ = await asyncio.wait(
                {getter, reader}, timeout=CHECK_SECONDS, return_when=asyncio.FIRST_COMPLETED
            )
            if getter in done:
                event = getter.result()
                if _bot_message(event):
                    event = await run_in_threadpool(with_source, event, zone)
                await websocket.send_json(event)
                continue
            getter.cancel()
            if reader not in done and not await run_in_threadpool(alive, False):
                await websocket.send_json({"type": "signed_out"})
                await websocket.close(code=SIGNED_OUT)
                break
    except (WebSocketDisconnect, RuntimeError):
        logger.debug("console socket closed")
    finally:
        for task in (reader, getter, *pumps):
            if task is not None:
                task.cancel()
        # Not awaited: waiting here while the server cancels this handler would
        # swallow its cancellation. Each pump unsubscribes as it is cancelled.


def _bot_message(event: dict[str, Any]) -> bool:
    message = event.get("message")
    return (
        event.get("type") == "message"
        and isinstance(message, dict)
        and message.get("sender") == Sender.BOT.value
    )


def _with_guidance_source(session: Session, event: dict[str, Any], zone: str) -> dict[str, Any]:
    """Adds where a guidance answer came from (article, revision, review-by), as the page shows."""
    message_id = event["message"].get("id")
    stored = session.get(Message, message_id) if isinstance(message_id, int) else None
    if stored is None:
        return event
    source = views.guidance_sources(session, [stored], zone, utcnow()).get(stored.id)
    if source is None:
        return event
    return {**event, "message": {**event["message"], "guidance": views.source_json(source)}}


def _load(session: Session, key: str | None, policy: auth.SessionPolicy, touch: bool) -> object:
    # The staff cookie also signs editors and reviewers in (to the guidance
    # admin); citizens' messages are for console roles only.
    row = auth.load(session=session, key=key, policy=policy, touch=touch)
    if row is None or row.officer is None or row.officer.role.value not in CONSOLE_ROLES:
        return None
    return row


async def _pump(hub: EventHub, name: str, merged: asyncio.Queue[dict[str, Any]]) -> None:
    async with hub.subscribe(name) as queue:
        while True:
            event = await queue.get()
            if name == CONSOLE_CHANNEL or event.get("type") in CONVERSATION_EVENTS:
                merged.put_nowait(event)


async def _read(websocket: WebSocket, touch: Callable[[], Awaitable[bool]]) -> None:
    """Reads the page's activity reports; returns when the socket closes."""
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            raw = await websocket.receive_text()
            try:
                report = json.loads(raw)
            except ValueError:
                continue
            if isinstance(report, dict) and report.get("type") == "activity":
                await touch()
