"""Twilio webhooks for WhatsApp and SMS: verify, parse, store, acknowledge.

Every request must carry an ``X-Twilio-Signature`` that validates, with the
account's auth token, against the public URL Twilio called (``CONSULAR_PUBLIC_BASE_URL``
plus the path and query, so it holds behind a proxy) and every form parameter.
Anything else gets 403 and changes nothing.

An inbound message is stored (once per ``MessageSid``) before the webhook is
answered, with an empty TwiML ``<Response/>``: replies go out later through
the REST API from the outbox (:mod:`bot.channels.twilio_sending`), and
Twilio's status callbacks move their delivery state forward.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import parse_qsl

from fastapi import APIRouter, HTTPException, Request, Response, status
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import ImmutableMultiDict
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from bot.channels.twilio_sending import (
    SMS,
    WHATSAPP,
    WHATSAPP_PREFIX,
    TwilioApi,
    TwilioSender,
    channel_enabled,
    chosen_payload,
    tapped_payload,
    twilio_configured,
)
from bot.conversations.service import AttachmentIn, ConversationService
from bot.core.config import Settings
from bot.db.models import (
    EXTERNAL_ID_LENGTH,
    Conversation,
    DeliveryState,
    Direction,
    Message,
)
from bot.db.session import session_scope
from bot.geo import locate
from bot.outbox.store import record_delivery_report

__all__ = ["TwilioApi", "TwilioSender", "router"]

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Twilio-Signature"
# Present when a Webhook Rule signs with a SharedKey instead of the auth token.
SIGNATURE_SETTINGS_HEADER = "X-Twilio-Webhooks-Signature-Settings"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
MAX_FORM_FIELDS = 200
MAX_MEDIA = 10
# A quick-reply button's id and title are short; anything longer is not one.
MAX_BUTTON_FIELD = 256
# How many of our latest messages a quick-reply tap may answer.
RECENT_BUTTON_MESSAGES = 5
_SID = re.compile(r"[A-Za-z0-9]{2,64}")
_NUMERIC_REPLY = re.compile(r"\s*\d{1,2}\s*[.)]?\s*")
_EMPTY_TWIML = str(MessagingResponse())

# Twilio's message statuses and what they mean for a stored reply; None: still
# on its way inside Twilio, nothing to record.
STATUS_STATES: dict[str, DeliveryState | None] = {
    "accepted": None,
    "scheduled": None,
    "queued": None,
    "sending": None,
    "sent": DeliveryState.SENT,
    "delivered": DeliveryState.DELIVERED,
    "read": DeliveryState.DELIVERED,
    "failed": DeliveryState.FAILED,
    "undelivered": DeliveryState.FAILED,
    "canceled": DeliveryState.FAILED,
}
OUTSIDE_WINDOW_CODE = "63016"
GREET = "/greet"
UNKNOWN_PLACE = (
    "Thank you for sharing your location. I could not tell which country it is in: "
    "please type the name of the country you are in."
)
MEDIA_KINDS = (("image/", "image"), ("video/", "video"), ("audio/", "audio"))

router = APIRouter(prefix="/webhooks/twilio", tags=["twilio"])


@dataclass(frozen=True)
class InboundMessage:
    """What a verified inbound webhook says."""

    sid: str
    sender: str
    text: str
    attachments: tuple[AttachmentIn, ...]
    location: tuple[float, float] | None
    place: str
    # A tapped WhatsApp quick-reply button: its id and its title.
    button_payload: str = ""
    button_text: str = ""


# -- endpoints --------------------------------------------------------------------


@router.post("/whatsapp", response_class=Response)
async def whatsapp_webhook(request: Request) -> Response:
    """A WhatsApp message from a citizen."""
    return await _inbound(request, WHATSAPP)


@router.post("/sms", response_class=Response)
async def sms_webhook(request: Request) -> Response:
    """An SMS from a citizen."""
    return await _inbound(request, SMS)


@router.post("/status", response_class=Response)
async def status_webhook(request: Request) -> Response:
    """Twilio reports what happened to one of our replies (the StatusCallback)."""
    settings = _settings(request)
    if not twilio_configured(settings):
        raise HTTPException(status.HTTP_404_NOT_FOUND)
    form = await _verified_form(request, settings)
    sid = form.get("MessageSid") or form.get("SmsSid") or ""
    reported = (form.get("MessageStatus") or form.get("SmsStatus") or "").strip().lower()
    if not _SID.fullmatch(sid) or not reported:
        _malformed(request, "a status callback needs MessageSid and MessageStatus")
    if reported not in STATUS_STATES:
        logger.info("ignoring Twilio status %r for %s", reported[:32], sid)
        return _twiml()
    state = STATUS_STATES[reported]
    if state is None:
        return _twiml()
    error: str | None = None
    if state == DeliveryState.FAILED:
        code = (form.get("ErrorCode") or "").strip()
        detail = (form.get("ErrorMessage") or "").strip()
        error = f"Twilio reported {reported}" + (f", error {code}" if code else "")
        error += f": {detail}" if detail else ""
        if code == OUTSIDE_WINDOW_CODE:
            # The citizen's 24 hours ran out before WhatsApp delivered it: an
            # officer has to follow up (a template, or another channel).
            state = DeliveryState.UNDELIVERABLE
            error += " (outside WhatsApp's 24-hour window)"
    changed = await run_in_threadpool(_record_report, request, sid, state, error)
    if changed is not None:
        conversation_id, message_id, new_state = changed
        request.app.state.hub.publish(
            conversation_id,
            {"type": "delivery", "message_id": message_id, "state": new_state},
        )
    return _twiml()


# -- inbound ------------------------------------------------------------------------


async def _inbound(request: Request, channel: str) -> Response:
    settings = _settings(request)
    if not channel_enabled(settings, channel):
        raise HTTPException(status.HTTP_404_NOT_FOUND)
    form = await _verified_form(request, settings)
    message = _parse_inbound(request, form, channel)
    request.app.state.rate_limiter.enforce(endpoint=f"twilio-{channel}", sender=message.sender)
    meaning = await _meaning(request, channel, message)
    service: ConversationService = request.app.state.conversations
    accepted = await service.accept(
        text=meaning.text,
        channel=channel,
        external_id=message.sender,
        provider_id=message.sid,
        rasa_text=meaning.rasa_text,
        attachments=meaning.attachments,
    )
    if not accepted.is_new:
        logger.info("Twilio redelivered %s; already stored", message.sid)
        return _twiml()
    if meaning.reply is not None and await service.answer_directly(
        accepted.conversation_id, accepted.message_id, meaning.reply
    ):
        return _twiml()
    service.process_soon(accepted.conversation_id, accepted.message_id)
    return _twiml()


@dataclass(frozen=True)
class _Meaning:
    """What to store and what the assistant should read."""

    text: str
    rasa_text: str | None = None
    attachments: tuple[AttachmentIn, ...] = ()
    # A fixed reply instead of a turn (a location nobody can place).
    reply: str | None = None


async def _meaning(request: Request, channel: str, message: InboundMessage) -> _Meaning:
    if message.location is not None:
        return await _located(message, message.location)
    text = message.text
    if message.button_payload or message.button_text:
        offered = await run_in_threadpool(_recent_buttons, request, channel, message.sender)
        payload = tapped_payload(message.button_payload, message.button_text, offered)
        if payload is not None:
            shown = text or message.button_text
            return _Meaning(text=shown, rasa_text=payload, attachments=message.attachments)
    if _NUMERIC_REPLY.fullmatch(text):
        buttons = await run_in_threadpool(_latest_buttons, request, channel, message.sender)
        payload = chosen_payload(text, buttons)
        if payload is not None:
            return _Meaning(text=text, rasa_text=payload, attachments=message.attachments)
    return _Meaning(text=text, rasa_text=_as_words(text), attachments=message.attachments)


def _as_words(text: str) -> str | None:
    """Rasa reads a leading "/" as an intent with entities: a citizen's own must stay words."""
    stripped = text.strip()
    if not stripped.startswith("/"):
        return None
    return stripped.lstrip("/").strip() or GREET


async def _located(message: InboundMessage, point: tuple[float, float]) -> _Meaning:
    latitude, longitude = point
    details: dict[str, Any] = {"latitude": latitude, "longitude": longitude}
    if message.place:
        details["place"] = message.place
    try:
        place = await run_in_threadpool(locate.nearest_city, latitude, longitude)
    except ValueError:
        place = None
    reference = f"geo:{latitude},{longitude}"
    if place is None:
        details["country"] = None
        attachment = AttachmentIn(kind="location", provider_ref=reference, details=details)
        where = f" ({message.place})" if message.place else ""
        text = message.text or f"Shared a location{where}"
        if message.place:
            # The address or place name may name the country; let the assistant read it.
            words = _as_words(message.place) or message.place
            return _Meaning(
                text=text, rasa_text=words, attachments=(*message.attachments, attachment)
            )
        return _Meaning(
            text=text,
            rasa_text="",
            attachments=(*message.attachments, attachment),
            reply=UNKNOWN_PLACE,
        )
    details.update(
        country=place.country, nearest_city=place.city, distance_km=round(place.distance_km, 1)
    )
    name = await run_in_threadpool(locate.country_name, place.country)
    attachment = AttachmentIn(kind="location", provider_ref=reference, details=details)
    return _Meaning(
        text=message.text or f"Shared a location ({name})",
        rasa_text="/inform_country" + json.dumps({"country": place.country}),
        attachments=(*message.attachments, attachment),
    )


def _parse_inbound(
    request: Request, form: ImmutableMultiDict[str, str], channel: str
) -> InboundMessage:
    sid = form.get("MessageSid") or form.get("SmsMessageSid") or ""
    if not _SID.fullmatch(sid):
        _malformed(request, "MessageSid is missing or not a Twilio sid")
    sender = (form.get("From") or "").strip()
    if not sender or len(sender) > EXTERNAL_ID_LENGTH:
        _malformed(request, "From is missing or too long")
    if (channel == WHATSAPP) != sender.startswith(WHATSAPP_PREFIX):
        _malformed(request, f"From is not a {channel} address")
    try:
        count = int(form.get("NumMedia") or "0")
    except ValueError:
        _malformed(request, "NumMedia is not a number")
    if not 0 <= count <= MAX_MEDIA:
        _malformed(request, "NumMedia is out of range")
    attachments = []
    for index in range(count):
        url = (form.get(f"MediaUrl{index}") or "").strip()
        if not url.startswith(("https://", "http://")):
            _malformed(request, f"MediaUrl{index} is missing")
        content_type = (form.get(f"MediaContentType{index}") or "").strip() or None
        attachments.append(
            AttachmentIn(
                kind=_media_kind(content_type),
                provider_ref=url,
                content_type=content_type,
                details={"index": index},
            )
        )
    location = None
    raw_latitude, raw_longitude = form.get("Latitude"), form.get("Longitude")
    if raw_latitude or raw_longitude:
        try:
            latitude, longitude = float(raw_latitude or ""), float(raw_longitude or "")
        except ValueError:
            _malformed(request, "Latitude and Longitude must both be numbers")
        finite = math.isfinite(latitude) and math.isfinite(longitude)
        if not finite or abs(latitude) > 90 or abs(longitude) > 180:
            _malformed(request, "Latitude or Longitude is out of range")
        location = (latitude, longitude)
    place = ", ".join(
        part
        for part in ((form.get("Label") or "").strip(), (form.get("Address") or "").strip())
        if part
    )
    return InboundMessage(
        sid=sid,
        sender=sender,
        text=form.get("Body") or "",
        attachments=tuple(attachments),
        location=location,
        place=place,
        button_payload=_button_field(form.get("ButtonPayload")),
        button_text=_button_field(form.get("ButtonText")),
    )


def _button_field(raw: str | None) -> str:
    value = (raw or "").strip()
    return value if len(value) <= MAX_BUTTON_FIELD else ""


def _media_kind(content_type: str | None) -> str:
    for prefix, kind in MEDIA_KINDS:
        if content_type and content_type.lower().startswith(prefix):
            return kind
    return "document"


# -- verification -------------------------------------------------------------------


async def _verified_form(request: Request, settings: Settings) -> ImmutableMultiDict[str, str]:
    """The form parameters, once the signature proves Twilio sent exactly these to this URL."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != FORM_CONTENT_TYPE:
        _malformed(request, f"expected {FORM_CONTENT_TYPE}, got {content_type[:64] or 'nothing'}")
    try:
        pairs = parse_qsl(
            (await request.body()).decode("utf-8"),
            keep_blank_values=True,
            errors="strict",
            max_num_fields=MAX_FORM_FIELDS,
        )
    except ValueError as exc:  # not UTF-8, bad percent-escapes, too many fields
        _malformed(request, f"unreadable form ({type(exc).__name__})")
    form = ImmutableMultiDict(pairs)
    signature = request.headers.get(SIGNATURE_HEADER)
    if not signature:
        _forbidden(request, "no signature")
    if request.headers.get(SIGNATURE_SETTINGS_HEADER):
        _forbidden(
            request,
            "signed with a Webhooks SharedKey, not the auth token; remove the Webhook Rule "
            "for this URL in the Twilio console",
        )
    url = public_url(request, settings)
    validator = RequestValidator(settings.twilio_auth_token)
    if not validator.validate(url, form, signature):
        _forbidden(request, f"signature does not validate for {url}")
    return form


def public_url(request: Request, settings: Settings) -> str:
    """The URL Twilio called: the public base URL, this route's path and the raw query."""
    path: str = request.scope["path"]
    root_path: str = request.scope.get("root_path", "")
    if root_path and path.startswith(root_path):
        path = path[len(root_path) :]
    query = request.scope.get("query_string", b"").decode("latin-1")
    return settings.public_base_url.rstrip("/") + path + (f"?{query}" if query else "")


def _forbidden(request: Request, reason: str) -> NoReturn:
    logger.warning("refused a Twilio webhook on %s: %s", request.url.path, reason)
    raise HTTPException(status.HTTP_403_FORBIDDEN, detail="Invalid Twilio signature.")


def _malformed(request: Request, reason: str) -> NoReturn:
    logger.warning("refused a malformed Twilio webhook on %s: %s", request.url.path, reason)
    raise HTTPException(status.HTTP_400_BAD_REQUEST, detail=f"Malformed request: {reason}.")


# -- small reads and writes ---------------------------------------------------------


def _latest_buttons(request: Request, channel: str, sender: str) -> list[dict[str, Any]]:
    """The buttons of the last message we sent this citizen (what a number answers)."""
    return _buttons_sent(request, channel, sender, messages=1)


def _recent_buttons(request: Request, channel: str, sender: str) -> list[dict[str, Any]]:
    """The buttons of our latest few messages to this citizen, the most recent first.

    A quick-reply button stays on screen after later messages, so a tap may
    answer a question asked a moment before the last message.
    """
    return _buttons_sent(request, channel, sender, messages=RECENT_BUTTON_MESSAGES)


def _buttons_sent(
    request: Request, channel: str, sender: str, *, messages: int
) -> list[dict[str, Any]]:
    """The buttons of our last ``messages`` messages to this citizen, the most recent first."""
    with session_scope(request.app.state.session_factory) as session:
        payloads = session.scalars(
            select(Message.payload)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(
                Conversation.channel == channel,
                Conversation.external_id == sender,
                Message.direction == Direction.OUTBOUND,
            )
            .order_by(Message.id.desc())
            .limit(messages)
        ).all()
    found: list[dict[str, Any]] = []
    for payload in payloads:
        buttons = (payload or {}).get("buttons")
        if isinstance(buttons, list):
            found += [button for button in buttons if isinstance(button, dict)]
    return found


def _record_report(
    request: Request, sid: str, state: DeliveryState, error: str | None
) -> tuple[str, int, str] | None:
    with session_scope(request.app.state.session_factory) as session:
        message = record_delivery_report(
            session=session, provider_message_id=sid, state=state, error=error
        )
        if message is None:
            return None
        return message.conversation_id, message.id, message.delivery_state.value


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _twiml() -> Response:
    return Response(content=_EMPTY_TWIML, media_type="text/xml")
