"""Helpers for driving the web chat widget and looking at what the app stored."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from playwright.sync_api import Locator, Page, WebSocketRoute, expect
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from bot.conversations import store
from bot.conversations.replies import BotReply, transcript_json
from bot.db.models import Conversation, Direction, Message, Sender
from bot.db.session import session_scope
from tests.browser.stack import Stack

FIELD_LABEL = "Your message"


class Chat:
    """The widget on the demo page, as a citizen sees and uses it."""

    def __init__(self, page: Page, stack: Stack) -> None:
        self.page = page
        self.stack = stack

    def open(self) -> Chat:
        self.page.goto(self.stack.url + "/")
        expect(self.field).to_be_visible()
        return self

    @property
    def field(self) -> Locator:
        return self.page.get_by_label(FIELD_LABEL, exact=True)

    @property
    def messages(self) -> Locator:
        """Every message shown in the transcript, oldest first."""
        return self.page.locator(".webchat__messages > li")

    def message(self, text: str) -> Locator:
        return self.messages.filter(has_text=text)

    def citizen(self, text: str) -> Locator:
        return self.page.locator(".webchat__message--citizen").filter(
            has=self.page.locator(".webchat__text", has_text=text)
        )

    @property
    def live_log(self) -> Locator:
        """The polite live region (role=log) that reads out new messages."""
        return self.page.locator("[role=log][aria-live=polite]")

    @property
    def alert_region(self) -> Locator:
        return self.page.locator("[aria-live=assertive]")

    @property
    def connection(self) -> Locator:
        return self.page.locator(".webchat__connection")

    @property
    def error_summary(self) -> Locator:
        return self.page.locator(".govuk-error-summary")

    @property
    def send_button(self) -> Locator:
        return self.page.get_by_role("button", name="Send", exact=True)

    def send(self, text: str) -> None:
        """Types into the field and presses Enter (the keyboard path).

        Like a citizen, waits until the previous message has gone: a reply can
        arrive over the socket before the POST that asked for it returns.
        """
        expect(self.send_button).to_be_enabled()
        self.field.fill(text)
        self.field.press("Enter")

    def say(self, text: str, reply: str) -> None:
        """Sends ``text`` and waits for ``reply`` to be shown."""
        self.send(text)
        expect(self.message(reply)).to_have_count(1)

    def shown_ids(self) -> list[str]:
        ids = self.messages.evaluate_all("items => items.map(item => item.dataset.id || '')")
        return [str(value) for value in ids]

    def stored_session(self) -> dict[str, str] | None:
        """The session the widget keeps in sessionStorage, if any."""
        raw = self.page.evaluate(
            "() => Object.keys(sessionStorage)"
            "  .filter(key => key.startsWith('consular-webchat:'))"
            "  .map(key => JSON.parse(sessionStorage.getItem(key)))"
        )
        assert isinstance(raw, list) and len(raw) <= 1, raw
        return {"session_id": raw[0]["sessionId"], "token": raw[0]["token"]} if raw else None

    def session(self) -> dict[str, str]:
        session = self.stored_session()
        assert session is not None, "the widget holds no session"
        return session


def wait_until(condition: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
    """Polls a server-side condition (the browser side uses Playwright's waits)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(0.02)


def stored(stack: Stack, conversation_id: str) -> list[Message]:
    """The conversation's messages as the app stored them, oldest first."""
    with session_scope(stack.session_factory) as session:
        return list(
            session.scalars(
                select(Message)
                .where(Message.conversation_id == conversation_id)
                .order_by(Message.id)
            ).all()
        )


def inbound_texts(stack: Stack, conversation_id: str) -> list[str]:
    return [m.text for m in stored(stack, conversation_id) if m.direction == Direction.INBOUND]


def conversation_count(stack: Stack) -> int:
    with session_scope(stack.session_factory) as session:
        return len(session.scalars(select(Conversation.id)).all())


def publish_officer_message(stack: Stack, conversation_id: str, text: str) -> int:
    """Stores an officer's message and pushes it to live subscribers, as the console will."""
    app = stack.server.app

    async def publish() -> int:
        def write() -> dict[str, Any]:
            with session_scope(stack.session_factory) as session:
                message = store.store_outbound(
                    session=session,
                    conversation_id=conversation_id,
                    reply=BotReply(text=text),
                    sender=Sender.OFFICER,
                )
                return transcript_json(message)

        item = await run_in_threadpool(write)
        app.state.hub.publish(conversation_id, {"type": "message", "message": item})
        return int(item["id"])

    return stack.server.call(publish)


class SocketSwitch:
    """Stands between the page and the app's websocket, so a test can cut it.

    While up, each socket the page opens is proxied to the real server. ``cut``
    closes the open ones (as a dropped connection would) and refuses new ones
    until ``restore``.
    """

    def __init__(self, page: Page) -> None:
        self.up = True
        self.opened = 0
        self.refused = 0
        self._routes: list[WebSocketRoute] = []
        page.route_web_socket("**/api/webchat/sessions/*/ws?*", self._handle)

    def _handle(self, route: WebSocketRoute) -> None:
        if not self.up:
            self.refused += 1
            route.close(code=1011, reason="connection lost")
            return
        self.opened += 1
        route.connect_to_server()
        self._routes.append(route)

    def cut(self) -> None:
        self.up = False
        for route in self._routes:
            route.close(code=1011, reason="connection lost")
        self._routes.clear()

    def restore(self) -> None:
        self.up = True


def silence_socket(page: Page) -> None:
    """Every socket the page opens stays open but never hears from the server."""
    page.route_web_socket("**/api/webchat/sessions/*/ws?*", lambda route: None)
