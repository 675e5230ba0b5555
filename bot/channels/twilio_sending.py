"""Twilio's outbound half: replies to WhatsApp and SMS through the Messages REST API.

The real ``twilio`` library does the talking, with its aiohttp client so a
send never blocks the event loop. Neither channel has buttons in free-form
messages, so a reply's buttons become numbered options in its text and the
webhook maps a numeric answer back (:func:`chosen_payload`). The one exception
is "Was this helpful?" on WhatsApp: with a quick-reply template configured it
goes out with real Yes and No buttons, and a tap is mapped back to the offered
button (:func:`tapped_payload`).

WhatsApp allows free-form messages only within its customer-service window
(24 hours after the citizen last wrote). Outside it a reply goes out as the
configured approved template, or is marked undeliverable for an officer.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from bot.core.config import Settings
from bot.db.models import utcnow
from bot.guidance.feedback import is_question
from bot.outbox.sending import (
    Outgoing,
    PermanentSendError,
    SendError,
    SendResult,
    UndeliverableError,
)

logger = logging.getLogger(__name__)

WHATSAPP = "whatsapp"
SMS = "sms"
WHATSAPP_PREFIX = "whatsapp:"
# Where the library sends every REST call by default.
TWILIO_API_ORIGIN = "https://api.twilio.com"
API_TIMEOUT_SECONDS = 15.0
# Twilio refuses a Body longer than this (error 21617); longer replies go out in parts.
MAX_BODY_CHARS = 1600
# A template variable holds one line of text (WhatsApp refuses newlines and tabs
# in parameters) and must leave room for the template's own words.
MAX_TEMPLATE_VARIABLE_CHARS = 900
ELLIPSIS = "…"
# Twilio error codes worth trying again later although the HTTP status is a 4xx.
RETRYABLE_CODES = frozenset({20429, 63018, 63038})
OUTSIDE_WINDOW_CODE = 63016
# Progress of replies sent in parts, so a retry does not repeat parts already sent.
MAX_TRACKED_PARTS = 1000

_CHOICE = re.compile(r"\s*(\d{1,2})\s*[.)]?\s*")
_WHITESPACE = re.compile(r"\s+")
_PHONE_NUMBER = re.compile(r"\+?\d[\d ()-]{5,}\d")

# The library logs every request and response at INFO (never the credentials,
# but noisy); warnings and errors are enough here.
_api_logger = logging.getLogger(f"{__name__}.api")
_api_logger.setLevel(logging.WARNING)


# -- rendering --------------------------------------------------------------------


def render_text(text: str, buttons: Sequence[Mapping[str, str]]) -> str:
    """The reply's text with its buttons written out as numbered options."""
    if not buttons:
        return text
    options = "\n".join(
        f"Reply {number} for {button['title']}" for number, button in enumerate(buttons, start=1)
    )
    return f"{text.rstrip()}\n\n{options}" if text.strip() else options


def chosen_payload(body: str, buttons: Sequence[Mapping[str, Any]]) -> str | None:
    """The payload of the option a numeric answer picks ("2" → the second button)."""
    match = _CHOICE.fullmatch(body)
    if match is None:
        return None
    index = int(match.group(1)) - 1
    if not 0 <= index < len(buttons):
        return None
    payload = buttons[index].get("payload")
    return payload if isinstance(payload, str) and payload else None


def tapped_payload(
    button_payload: str, button_text: str, buttons: Sequence[Mapping[str, Any]]
) -> str | None:
    """The payload of the offered button a WhatsApp quick-reply tap stands for.

    A tap reports the template button's id (``ButtonPayload``) and title
    (``ButtonText``). The id matches when the template carries our payload;
    otherwise the title picks the offered button of that name. ``buttons``
    are the offered ones, the most recent first.
    """
    for button in buttons:
        if button_payload and button.get("payload") == button_payload:
            return button_payload
    wanted = button_text.strip().casefold()
    for button in buttons:
        title, payload = button.get("title"), button.get("payload")
        if wanted and isinstance(title, str) and title.strip().casefold() == wanted:
            return payload if isinstance(payload, str) and payload else None
    return None


def split_body(text: str, limit: int = MAX_BODY_CHARS) -> list[str]:
    """Cuts text into parts Twilio accepts, at a paragraph, line or word break if possible."""
    parts: list[str] = []
    rest = text.strip() or text
    while len(rest) > limit:
        window = rest[: limit + 1]
        cut = -1
        for separator in ("\n\n", "\n", " "):
            cut = window.rfind(separator, 0, limit)
            if cut > limit // 2:
                break
        if cut <= 0:
            cut = limit
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    parts.append(rest)
    return parts


def template_variable(text: str, limit: int = MAX_TEMPLATE_VARIABLE_CHARS) -> str:
    """Text made fit for a WhatsApp template variable: one line, shortened if need be."""
    flat = _WHITESPACE.sub(" ", text).strip()
    if len(flat) <= limit:
        return flat
    shortened = flat[: limit - len(ELLIPSIS)]
    space = shortened.rfind(" ")
    if space > limit // 2:
        shortened = shortened[:space]
    return shortened.rstrip() + ELLIPSIS


def in_session_window(last_inbound_at: datetime | None, hours: int, now: datetime) -> bool:
    """Whether WhatsApp still allows free-form messages to this citizen."""
    if last_inbound_at is None:
        return False
    if last_inbound_at.tzinfo is None:  # SQLite returns naive UTC datetimes
        last_inbound_at = last_inbound_at.replace(tzinfo=UTC)
    return now - last_inbound_at < timedelta(hours=hours)


def whatsapp_address(number: str) -> str:
    """A WhatsApp sender as Twilio wants it ("whatsapp:+44…"), whichever way it was configured."""
    return number if number.startswith(WHATSAPP_PREFIX) else f"{WHATSAPP_PREFIX}{number}"


# -- the HTTP client ----------------------------------------------------------------


class TwilioApiHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]
    """The library's own aiohttp client, with a timeout and an optional other API origin.

    Every REST call the library makes to ``https://api.twilio.com`` goes to
    ``api_base_url`` instead. Production leaves ``CONSULAR_TWILIO_API_BASE_URL``
    at its default, which makes this a no-op; tests set it to a fake Twilio API
    on loopback so the real library is exercised end to end. Other hosts (a
    region or edge the library was told to use) are left alone.
    """

    def __init__(self, *, api_base_url: str = TWILIO_API_ORIGIN, timeout: float) -> None:
        super().__init__(pool_connections=True, timeout=timeout, logger=_api_logger)
        self._origin = api_base_url.rstrip("/")

    def rewrite(self, url: str) -> str:
        """The URL the request really goes to."""
        if self._origin == TWILIO_API_ORIGIN:
            return url
        if url == TWILIO_API_ORIGIN or url.startswith(f"{TWILIO_API_ORIGIN}/"):
            return self._origin + url[len(TWILIO_API_ORIGIN) :]
        return url

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (the library's signature)
        allow_redirects: bool = False,
    ) -> Any:
        if auth is not None:
            # As a header rather than aiohttp's deprecated ``auth=BasicAuth``; the
            # library's request log leaves Authorization headers out.
            headers = {**(headers or {}), "Authorization": basic_authorization(*auth)}
        # The library passes no timeout of its own, and aiohttp then waits forever.
        return await super().request(
            method,
            self.rewrite(url),
            params=params,
            data=data,
            headers=headers,
            auth=None,
            timeout=timeout if timeout is not None else self.timeout,
            allow_redirects=allow_redirects,
        )


def basic_authorization(username: str, password: str) -> str:
    """An HTTP basic Authorization header value."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


# -- the sender ---------------------------------------------------------------------


class TwilioSender:
    """Sends one channel's replies (``whatsapp`` or ``sms``) through the Messages API."""

    def __init__(
        self,
        *,
        channel: str,
        client: Any,
        from_: str,
        status_callback: str,
        session_hours: int | None = None,
        template_sid: str = "",
        feedback_content_sid: str = "",
    ) -> None:
        if channel not in (WHATSAPP, SMS):
            raise ValueError(f"not a Twilio channel: {channel}")
        self.channel = channel
        self._client = client
        self._from = whatsapp_address(from_) if channel == WHATSAPP else from_
        self._status_callback = status_callback
        self._session_hours = session_hours
        self._template_sid = template_sid
        self._feedback_content_sid = feedback_content_sid
        # item id → how many parts of a long reply Twilio has already taken.
        self._parts_sent: OrderedDict[int, int] = OrderedDict()

    async def send(self, outgoing: Outgoing) -> SendResult:
        """Delivers one reply, or raises the :class:`SendError` that says what to do next."""
        if self._feedback_content_sid and is_question(outgoing.buttons):
            # "Was this helpful?" with real Yes and No buttons (only WhatsApp has one).
            sid = await self._create(to=outgoing.recipient, content_sid=self._feedback_content_sid)
            return SendResult(provider_message_id=sid)
        text = render_text(outgoing.text, outgoing.buttons)
        if self.channel == WHATSAPP and not self._may_send_free_text(outgoing):
            return await self._send_template(outgoing, text)
        try:
            return await self._send_parts(outgoing, split_body(text))
        except UndeliverableError:
            # Twilio knows the window better than our clock does.
            if self.channel == WHATSAPP and self._template_sid:
                return await self._send_template(outgoing, text)
            raise

    def _may_send_free_text(self, outgoing: Outgoing) -> bool:
        if self._session_hours is None:
            return True
        return in_session_window(outgoing.last_inbound_at, self._session_hours, utcnow())

    async def _send_parts(self, outgoing: Outgoing, parts: list[str]) -> SendResult:
        done = self._parts_sent.pop(outgoing.item_id, 0)
        sid: str | None = None
        try:
            for index in range(done, len(parts)):
                sid = await self._create(to=outgoing.recipient, body=parts[index])
                done = index + 1
        except (PermanentSendError, UndeliverableError):
            raise
        except SendError:
            if done:
                self._remember(outgoing.item_id, done)
            raise
        # The last part's status stands for the whole reply.
        return SendResult(provider_message_id=sid)

    async def _send_template(self, outgoing: Outgoing, text: str) -> SendResult:
        if not self._template_sid:
            raise UndeliverableError("outside WhatsApp's 24-hour window; no template configured")
        sid = await self._create(
            to=outgoing.recipient,
            content_sid=self._template_sid,
            content_variables=json.dumps({"1": template_variable(text)}, ensure_ascii=False),
        )
        return SendResult(provider_message_id=sid)

    async def _create(self, *, to: str, **fields: str) -> str:
        try:
            message = await self._client.messages.create_async(
                to=to, from_=self._from, status_callback=self._status_callback, **fields
            )
        except (TwilioRestException, TwilioServiceException) as exc:
            raise classify(exc) from None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise SendError(f"could not reach Twilio: {type(exc).__name__}: {exc}") from None
        sid = getattr(message, "sid", None)
        if not isinstance(sid, str) or not sid:
            raise SendError("Twilio accepted the message but returned no sid")
        return sid

    def _remember(self, item_id: int, parts_done: int) -> None:
        self._parts_sent[item_id] = parts_done
        while len(self._parts_sent) > MAX_TRACKED_PARTS:
            self._parts_sent.popitem(last=False)


def classify(exc: TwilioRestException | TwilioServiceException) -> SendError:
    """Maps a Twilio API error onto retry, give up, or undeliverable."""
    status = int(getattr(exc, "status", 0) or 0)
    raw_code = getattr(exc, "code", None)
    code = raw_code if isinstance(raw_code, int) else None
    detail = getattr(exc, "msg", None) or getattr(exc, "detail", None) or getattr(exc, "title", "")
    # Twilio's messages often quote the citizen's number; errors are logged and stored.
    detail = _PHONE_NUMBER.sub("<number>", str(detail))
    description = f"Twilio error {code if code is not None else '-'} (HTTP {status}): {detail}"
    if code == OUTSIDE_WINDOW_CODE:
        return UndeliverableError(f"outside WhatsApp's 24-hour window: {description}")
    if status == 429 or status >= 500 or status < 400 or code in RETRYABLE_CODES:
        return SendError(description)
    if status == 401:
        # Wrong or rotated credentials: an operator can fix that, so keep the
        # message and retry with backoff rather than failing every reply.
        logger.error("Twilio refused our credentials; check CONSULAR_TWILIO_ACCOUNT_SID/AUTH_TOKEN")
        return SendError(description)
    # Invalid or unsubscribed number (21211, 21610, 63024…), bad sender, bad template.
    return PermanentSendError(description)


# -- wiring -------------------------------------------------------------------------


def twilio_configured(settings: Settings) -> bool:
    """Twilio is on when an account and its auth token are set."""
    return bool(settings.twilio_account_sid and settings.twilio_auth_token)


def channel_enabled(settings: Settings, channel: str) -> bool:
    """A channel is on when Twilio is configured and the channel has a number to send from."""
    if not twilio_configured(settings):
        return False
    if channel == WHATSAPP:
        return bool(settings.twilio_whatsapp_from)
    if channel == SMS:
        return bool(settings.twilio_sms_from)
    return False


def status_callback_url(settings: Settings) -> str:
    """Where Twilio reports what happened to each reply."""
    return f"{settings.public_base_url.rstrip('/')}/webhooks/twilio/status"


class TwilioApi:
    """One REST client (one connection pool) shared by the WhatsApp and SMS senders."""

    def __init__(self, settings: Settings, *, timeout: float = API_TIMEOUT_SECONDS) -> None:
        # Called inside the running event loop: aiohttp's session belongs to it.
        self.http_client = TwilioApiHttpClient(
            api_base_url=settings.twilio_api_base_url, timeout=timeout
        )
        if settings.twilio_api_base_url.rstrip("/") != TWILIO_API_ORIGIN:
            logger.warning(
                "Twilio API calls go to %s instead of %s (meant for tests only)",
                settings.twilio_api_base_url,
                TWILIO_API_ORIGIN,
            )
        self.client = Client(
            settings.twilio_account_sid,
            settings.twilio_auth_token,
            http_client=self.http_client,
        )
        self.senders: dict[str, TwilioSender] = {}
        callback = status_callback_url(settings)
        if channel_enabled(settings, WHATSAPP):
            self.senders[WHATSAPP] = TwilioSender(
                channel=WHATSAPP,
                client=self.client,
                from_=settings.twilio_whatsapp_from,
                status_callback=callback,
                session_hours=settings.whatsapp_session_hours,
                template_sid=settings.twilio_whatsapp_template_sid,
                feedback_content_sid=settings.twilio_feedback_content_sid,
            )
        if channel_enabled(settings, SMS):
            self.senders[SMS] = TwilioSender(
                channel=SMS,
                client=self.client,
                from_=settings.twilio_sms_from,
                status_callback=callback,
            )

    @classmethod
    def from_settings(cls, settings: Settings) -> TwilioApi | None:
        """The API client and senders, or None while Twilio is not configured."""
        if not any(channel_enabled(settings, channel) for channel in (WHATSAPP, SMS)):
            return None
        return cls(settings)

    async def close(self) -> None:
        """Closes the HTTP connection pool."""
        await self.http_client.close()

    async def hold_open(self) -> None:
        """Keeps the connection pool until cancelled (app shutdown), then closes it."""
        try:
            await asyncio.Event().wait()
        finally:
            await self.close()
