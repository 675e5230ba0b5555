"""From a Telegram update to a stored message: one handler per kind of update.

The webhook and the polling loop both call :func:`handle_update`, which
returns only once the message is stored (or found stored: ``update_id`` is
the provider id, so a redelivered update is one turn). The turn itself runs
in the background.

Only private chats are served: a consular conversation is one person's, and
a group chat would mix several people into it.
"""

from __future__ import annotations

import enum
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import State
from telegram import Bot, CallbackQuery, Update
from telegram import Message as TelegramMessage
from telegram.constants import ChatType
from telegram.error import TelegramError

from bot.channels.telegram_bot import CHANNEL, redact
from bot.conversations.events import EventHub
from bot.conversations.service import AttachmentIn, ConversationService
from bot.db.models import Conversation, Direction, Message
from bot.db.session import session_scope
from bot.geo import locate

logger = logging.getLogger(__name__)

# What the assistant reads for a command; the citizen's text is stored as typed.
GREET = "/greet"
# Buttons are sent as "<outbound message id>:<button index>" (Telegram allows
# 64 bytes of callback data; payloads can be longer and stay in our database).
CALLBACK_DATA = re.compile(r"([0-9]{1,18}):([0-9]{1,3})")
EXPIRED_BUTTON = "That button is no longer available. Please type your question instead."
UNKNOWN_PLACE = (
    "Thank you for sharing your location. I could not tell which country it is in: "
    "please type the name of the country you are in."
)


class Outcome(enum.StrEnum):
    """What became of one update."""

    STORED = "stored"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"
    EXPIRED_BUTTON = "expired-button"


@dataclass(frozen=True)
class Inbound:
    """What one Telegram message becomes: stored text, what the assistant reads, files.

    ``reply`` is a fixed answer given instead of asking the assistant (when
    the bot owns the conversation); ``rasa_text`` stays a sensible turn in
    case the message is ever picked up by the assistant instead.
    """

    text: str
    rasa_text: str | None = None
    attachments: tuple[AttachmentIn, ...] = ()
    reply: str | None = None


@dataclass(frozen=True)
class TelegramContext:
    """What the handlers need from the running app."""

    service: ConversationService
    session_factory: sessionmaker[Session]
    hub: EventHub
    wake_outbox: Callable[[], None]
    bot: Bot
    token: str
    emergency_phone: str

    @classmethod
    def from_state(cls, state: State, bot: Bot) -> TelegramContext:
        """Reads the app's services from ``app.state`` (set up by the lifespan)."""
        return cls(
            service=state.conversations,
            session_factory=state.session_factory,
            hub=state.hub,
            wake_outbox=state.outbox.wake,
            bot=bot,
            token=state.settings.telegram_bot_token,
            emergency_phone=state.settings.emergency_phone,
        )


def help_text(emergency_phone: str) -> str:
    """The answer to /help: what the service does, and the 24-hour line."""
    return (
        "I'm the consular assistant for British nationals abroad. I can help with:\n"
        "• a lost, stolen or damaged passport, or renewing a passport abroad\n"
        "• emergencies: arrest, hospital, crime, a death abroad, a missing person, "
        "kidnap, forced marriage, child abduction, disasters and unrest\n"
        "• running out of money abroad\n"
        "• travel advice, entry requirements and health risks for a country\n"
        "• contacting a British embassy, high commission or consulate\n"
        "• an update on your consular case\n"
        "• legalising documents, registering a birth or getting married abroad\n\n"
        "Tell me in your own words what has happened, or share your location so I know "
        "which country you are in. You can ask to talk to a person at any time.\n\n"
        f"If you need urgent help, call the 24-hour consular line on {emergency_phone}."
    )


def provider_id(update_id: int) -> str:
    """The provider id of an update: Telegram never reuses an update_id for a bot."""
    return f"update:{update_id}"


def private_chat_id(update: Update) -> str | None:
    """The private chat an update belongs to (rate limits and conversations key on it)."""
    chat = update.effective_chat
    if chat is None or chat.type != ChatType.PRIVATE:
        return None
    return str(chat.id)


async def handle_update(update: Update, ctx: TelegramContext) -> Outcome:
    """Stores what the update says and starts its turn; returns once it is stored."""
    if update.message is not None:
        return await _on_message(update, update.message, ctx)
    if update.callback_query is not None:
        return await _on_button(update, update.callback_query, ctx)
    logger.info("ignored Telegram update %s: not a message or button press", update.update_id)
    return Outcome.IGNORED


# -- messages ---------------------------------------------------------------------


async def _on_message(update: Update, message: TelegramMessage, ctx: TelegramContext) -> Outcome:
    chat_id = private_chat_id(update)
    if chat_id is None:
        logger.info("ignored Telegram update %s: not a private chat", update.update_id)
        return Outcome.IGNORED
    inbound = await describe_message(message, emergency_phone=ctx.emergency_phone)
    if inbound is None:
        logger.info("ignored Telegram update %s: nothing the service handles", update.update_id)
        return Outcome.IGNORED
    accepted = await ctx.service.accept(
        text=inbound.text,
        channel=CHANNEL,
        external_id=chat_id,
        provider_id=provider_id(update.update_id),
        rasa_text=inbound.rasa_text,
        attachments=inbound.attachments,
    )
    if not accepted.is_new:
        return Outcome.DUPLICATE
    if inbound.reply is not None and await ctx.service.answer_directly(
        accepted.conversation_id, accepted.message_id, inbound.reply
    ):
        return Outcome.STORED
    ctx.service.process_soon(accepted.conversation_id, accepted.message_id)
    return Outcome.STORED


async def describe_message(message: TelegramMessage, *, emergency_phone: str) -> Inbound | None:
    """What to store for a message; None for kinds the service does not handle."""
    if message.location is not None:
        return await _location(message)
    attachment = attachment_of(message)
    if attachment is not None:
        # The caption, if any, is what the citizen said; without one the
        # service only acknowledges the file.
        caption = message.caption or ""
        return Inbound(text=caption, rasa_text=_as_words(caption), attachments=(attachment,))
    if message.text is not None:
        return _text(message.text, emergency_phone)
    return None


def _text(text: str, emergency_phone: str) -> Inbound:
    stripped = text.strip()
    if not stripped.startswith("/"):
        return Inbound(text=text)
    command = stripped.split(maxsplit=1)[0][1:].split("@", 1)[0].lower()
    if command == "start":
        return Inbound(text=text, rasa_text=GREET)
    if command == "help":
        return Inbound(text=text, rasa_text=GREET, reply=help_text(emergency_phone))
    return Inbound(text=text, rasa_text=_as_words(text) or GREET)


def _as_words(text: str) -> str | None:
    """What the assistant should read for text starting with "/" (None: the text itself).

    Rasa reads a leading "/" as an intent with entities: a citizen's own
    "/something" must reach it as words, not as a forged intent.
    """
    stripped = text.strip()
    if not stripped.startswith("/"):
        return None
    return stripped.lstrip("/").strip()


async def _location(message: TelegramMessage) -> Inbound:
    assert message.location is not None
    latitude, longitude = message.location.latitude, message.location.longitude
    try:
        place = await run_in_threadpool(locate.nearest_city, latitude, longitude)
    except ValueError:
        place = None
    details: dict[str, Any] = {"latitude": latitude, "longitude": longitude}
    if message.venue is not None:
        details["venue"] = {"title": message.venue.title, "address": message.venue.address}
    if place is None:
        details["country"] = None
    else:
        details.update(
            country=place.country,
            nearest_city=place.city,
            distance_km=round(place.distance_km, 1),
        )
    # Kept for an officer: where the citizen said they are.
    kept = AttachmentIn(
        kind="location", provider_ref=f"geo:{latitude},{longitude}", details=details
    )
    if place is None:
        # Nothing for the assistant to read: a fixed reply asks for the country.
        return Inbound(
            text="Shared a location", rasa_text="", attachments=(kept,), reply=UNKNOWN_PLACE
        )
    name = await run_in_threadpool(locate.country_name, place.country)
    return Inbound(
        text=f"Shared a location ({name})",
        rasa_text="/inform_country" + json.dumps({"country": place.country}, separators=(",", ":")),
        attachments=(kept,),
    )


# Files that carry their own type (and mostly a name), in the order checked,
# with the type to assume when Telegram gives none.
_FILE_KINDS = (("document", None), ("voice", "audio/ogg"), ("audio", None), ("video", None))


def attachment_of(message: TelegramMessage) -> AttachmentIn | None:
    """The file a message carries, described for an officer (Telegram keeps the bytes)."""
    if message.photo:
        photo = message.photo[-1]  # Telegram lists sizes smallest first
        return AttachmentIn(
            kind="photo",
            provider_ref=photo.file_id,
            content_type="image/jpeg",
            size_bytes=photo.file_size,
            details={
                "file_unique_id": photo.file_unique_id,
                "width": photo.width,
                "height": photo.height,
            },
        )
    for attribute, default_type in _FILE_KINDS:
        item = getattr(message, attribute)
        if item is not None:
            return AttachmentIn(
                kind=attribute,
                provider_ref=item.file_id,
                content_type=item.mime_type or default_type,
                filename=getattr(item, "file_name", None),
                size_bytes=item.file_size,
                details={"file_unique_id": item.file_unique_id},
            )
    if message.video_note is not None:
        note = message.video_note
        return AttachmentIn(
            kind="video",
            provider_ref=note.file_id,
            content_type="video/mp4",
            size_bytes=note.file_size,
            details={"file_unique_id": note.file_unique_id, "video_note": True},
        )
    if message.sticker is not None:
        sticker = message.sticker
        return AttachmentIn(
            kind="sticker",
            provider_ref=sticker.file_id,
            content_type=(
                "video/webm"
                if sticker.is_video
                else "application/x-tgsticker"
                if sticker.is_animated
                else "image/webp"
            ),
            size_bytes=sticker.file_size,
            details={"file_unique_id": sticker.file_unique_id, "emoji": sticker.emoji},
        )
    return None


# -- button presses -----------------------------------------------------------------


async def _on_button(update: Update, query: CallbackQuery, ctx: TelegramContext) -> Outcome:
    chat_id = private_chat_id(update)
    if chat_id is None:
        await _answer(query, ctx, EXPIRED_BUTTON)
        logger.info("ignored Telegram button press %s: not a private chat", update.update_id)
        return Outcome.IGNORED
    button = await run_in_threadpool(_find_button, ctx.session_factory, chat_id, query.data)
    if button is None:
        await _answer(query, ctx, EXPIRED_BUTTON)
        logger.info("Telegram button press %s names no button we sent there", update.update_id)
        return Outcome.EXPIRED_BUTTON
    title, payload = button
    accepted = await ctx.service.accept(
        text=title,
        channel=CHANNEL,
        external_id=chat_id,
        provider_id=provider_id(update.update_id),
        rasa_text=payload,
    )
    if accepted.is_new:
        ctx.service.process_soon(accepted.conversation_id, accepted.message_id)
    # Only now that the press is stored does the button stop spinning.
    await _answer(query, ctx, None)
    return Outcome.STORED if accepted.is_new else Outcome.DUPLICATE


def _find_button(
    factory: sessionmaker[Session], chat_id: str, data: str | None
) -> tuple[str, str] | None:
    """The (title, payload) of a button we sent to this chat, from its callback data."""
    match = CALLBACK_DATA.fullmatch(data or "")
    if match is None:
        return None
    message_id, index = int(match.group(1)), int(match.group(2))
    with session_scope(factory) as session:
        message = session.get(Message, message_id)
        if message is None or message.direction != Direction.OUTBOUND:
            return None
        conversation = session.get_one(Conversation, message.conversation_id)
        # Callback data comes from the citizen's client: only a button sent to
        # this very chat counts.
        if conversation.channel != CHANNEL or conversation.external_id != chat_id:
            return None
        buttons = (message.payload or {}).get("buttons") or []
        if index >= len(buttons) or not isinstance(buttons[index], dict):
            return None
        payload = str(buttons[index].get("payload") or "")
        title = str(buttons[index].get("title") or payload)
        return (title, payload) if payload else None


async def _answer(query: CallbackQuery, ctx: TelegramContext, text: str | None) -> None:
    try:
        await ctx.bot.answer_callback_query(callback_query_id=query.id, text=text)
    except TelegramError as exc:
        # Telegram refuses answers to presses older than a few minutes; the
        # press itself is stored and answered in the chat either way.
        logger.info("could not answer Telegram button press: %s", redact(exc.message, ctx.token))


# -- fixed replies ---------------------------------------------------------------------
