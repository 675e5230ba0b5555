"""The Telegram channel: webhook, sender, and the bot's life inside the app.

* ``POST /webhooks/telegram`` takes updates from Telegram. Without the right
  ``X-Telegram-Bot-Api-Secret-Token`` it answers 403 and touches nothing; it
  answers 200 only once the message is stored, so Telegram retries anything
  it could not hand over. The route answers 404 while Telegram is off (no
  ``CONSULAR_TELEGRAM_BOT_TOKEN``).
* :class:`TelegramSender` delivers outbox items with ``sendMessage``;
  buttons become an inline keyboard.
* :class:`TelegramRuntime` owns the one ``Bot`` of the process. In polling
  mode (local use without a public URL) it removes the webhook and
  long-polls ``getUpdates``, feeding each update through the same handler as
  the webhook and confirming it to Telegram only once it is stored.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import JSONResponse
from starlette.datastructures import State
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    RetryAfter,
    TelegramError,
)

from bot.channels.telegram_bot import ALLOWED_UPDATES, CHANNEL, WEBHOOK_PATH, make_bot, redact
from bot.channels.telegram_inbound import TelegramContext, handle_update, private_chat_id
from bot.core.config import Settings
from bot.outbox.sending import Outgoing, PermanentSendError, SendError, SendResult

logger = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
RATE_LIMIT_ENDPOINT = "telegram-webhook"
# Telegram's limit is 4096 characters per message; a margin keeps clear of it.
MAX_MESSAGE_LENGTH = 4000
POLL_TIMEOUT_SECONDS = 25
RETRY_MAX_SECONDS = 60.0

router = APIRouter(tags=["telegram"])


# -- sending -----------------------------------------------------------------------


class TelegramSender:
    """Delivers outbox items to Telegram chats."""

    channel = CHANNEL

    def __init__(self, bot: Bot, *, token: str):
        self._bot = bot
        self._token = token

    async def send(self, outgoing: Outgoing) -> SendResult:
        """Sends the text (in parts if too long), with the buttons on the last part."""
        try:
            chat_id = int(outgoing.recipient)
        except ValueError:
            raise PermanentSendError(f"not a Telegram chat id: {outgoing.recipient!r}") from None
        parts = split_text(outgoing.text, MAX_MESSAGE_LENGTH)
        keyboard = inline_keyboard(outgoing.message_id, outgoing.buttons)
        message_id = ""
        try:
            for index, part in enumerate(parts):
                last = index == len(parts) - 1
                sent = await self._bot.send_message(
                    chat_id=chat_id, text=part, reply_markup=keyboard if last else None
                )
                message_id = str(sent.message_id)
        except (Forbidden, BadRequest, ChatMigrated) as exc:
            # Blocked by the citizen, chat gone, or a message Telegram will
            # never take: retrying cannot help, an officer has to see it.
            raise PermanentSendError(self._said(exc)) from exc
        except RetryAfter as exc:
            raise SendError(f"Telegram is rate limiting the bot: {self._said(exc)}") from exc
        except TelegramError as exc:  # TimedOut, NetworkError, InvalidToken, Conflict...
            raise SendError(self._said(exc)) from exc
        return SendResult(provider_message_id=message_id)

    def _said(self, exc: TelegramError) -> str:
        return f"{type(exc).__name__}: {redact(exc.message, self._token)}"


def inline_keyboard(message_id: int, buttons: list[dict[str, str]]) -> InlineKeyboardMarkup | None:
    """One button per row; each names its message and position, the payload stays with us."""
    rows = [
        [InlineKeyboardButton(text=button["title"], callback_data=f"{message_id}:{index}")]
        for index, button in enumerate(buttons)
        if button.get("title") and button.get("payload")
    ]
    return InlineKeyboardMarkup(rows) if rows else None


def split_text(text: str, limit: int) -> list[str]:
    """``text`` in parts of at most ``limit`` characters, cut at paragraphs or lines if possible."""
    parts: list[str] = []
    rest = text
    while len(rest) > limit:
        window = rest[:limit]
        # The last paragraph break in the second half of the window, else a
        # line break, else a space, else a hard cut.
        cuts = (window.rfind(separator) for separator in ("\n\n", "\n", " "))
        cut = next((at for at in cuts if at >= limit // 2), limit)
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    parts.append(rest)
    return parts


# -- the bot's life in the app -------------------------------------------------------


class TelegramRuntime:
    """The process's one Bot, its sender, and (in polling mode) the polling loop."""

    def __init__(
        self, settings: Settings, bot: Bot, *, poll_timeout: int = POLL_TIMEOUT_SECONDS
    ) -> None:
        self.settings = settings
        self.bot = bot
        self.sender = TelegramSender(bot, token=settings.telegram_bot_token)
        self._poll_timeout = poll_timeout

    def verify(self, secret_token: str | None) -> bool:
        """True when the request carries the configured webhook secret (constant time)."""
        expected = self.settings.telegram_webhook_secret
        if not expected or secret_token is None:
            return False
        return hmac.compare_digest(secret_token.encode(), expected.encode())

    async def run(self, state: State) -> None:
        """Polls (in polling mode) or waits; shuts the Bot down when cancelled at exit."""
        try:
            if self.settings.telegram_mode == "polling":
                await self.poll(TelegramContext.from_state(state, self.bot))
            else:
                await asyncio.Event().wait()
        finally:
            try:
                await self.bot.shutdown()
            except Exception as exc:  # shutting down: note it, do not mask the exit
                logger.warning("Telegram client did not shut down cleanly: %s", type(exc).__name__)

    async def poll(self, ctx: TelegramContext) -> None:
        """Long-polls getUpdates until cancelled; an update is confirmed once it is stored."""
        await self._remove_webhook()
        offset: int | None = None
        delay = 1.0
        while True:
            try:
                updates = await self.bot.get_updates(
                    offset=offset,
                    timeout=self._poll_timeout,
                    allowed_updates=list(ALLOWED_UPDATES),
                )
            except Exception as exc:  # never let polling die: the app would go deaf
                said = exc.message if isinstance(exc, TelegramError) else type(exc).__name__
                logger.warning(
                    "Telegram polling failed (%s); trying again in %.0f s",
                    redact(said, ctx.token),
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_SECONDS)
                continue
            delay = 1.0
            for update in updates:
                try:
                    await handle_update(update, ctx)
                except Exception:
                    # Not stored: ask for it again (from this offset) shortly.
                    logger.exception("Telegram update %s could not be stored", update.update_id)
                    await asyncio.sleep(delay)
                    break
                # getUpdates with this offset tells Telegram the update is ours.
                offset = update.update_id + 1

    async def _remove_webhook(self) -> None:
        # getUpdates does not work while a webhook is set.
        delay = 1.0
        while True:
            try:
                await self.bot.delete_webhook(drop_pending_updates=False)
            except TelegramError as exc:
                logger.warning(
                    "could not remove the Telegram webhook for polling (%s); retrying in %.0f s",
                    redact(exc.message, self.settings.telegram_bot_token),
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_SECONDS)
                continue
            logger.info("Telegram polling mode: webhook removed, polling for updates")
            return


async def start(settings: Settings) -> TelegramRuntime | None:
    """The initialised Telegram runtime, or None when Telegram is not configured.

    The app starts even when Telegram cannot be reached: replies wait in the outbox.
    """
    if not settings.telegram_bot_token:
        logger.info("Telegram is off: CONSULAR_TELEGRAM_BOT_TOKEN is not set")
        return None
    bot = make_bot(settings)
    try:
        await bot.initialize()
    except InvalidToken:
        # The exception's own text quotes the token.
        logger.error(
            "Telegram rejected CONSULAR_TELEGRAM_BOT_TOKEN; replies to Telegram will fail "
            "until it is corrected"
        )
    except TelegramError as exc:
        logger.warning(
            "Telegram is not reachable yet (%s); replies wait in the outbox",
            redact(exc.message, settings.telegram_bot_token),
        )
    if settings.telegram_mode == "webhook" and not settings.telegram_webhook_secret:
        logger.warning(
            "CONSULAR_TELEGRAM_WEBHOOK_SECRET is not set: the Telegram webhook refuses every "
            "request until it is"
        )
    return TelegramRuntime(settings, bot)


# -- the webhook ------------------------------------------------------------------------


@router.post(WEBHOOK_PATH, include_in_schema=False)
async def webhook(request: Request) -> JSONResponse:
    """Stores one Telegram update, then acknowledges it."""
    runtime: TelegramRuntime | None = getattr(request.app.state, "telegram", None)
    if runtime is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="Telegram is not configured.")
    if not runtime.verify(request.headers.get(SECRET_HEADER)):
        logger.warning("refused a Telegram webhook request without the right secret token")
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="Forbidden.")
    update = _parse(await request.body(), runtime.bot)
    request.app.state.rate_limiter.enforce(
        endpoint=RATE_LIMIT_ENDPOINT, sender=private_chat_id(update)
    )
    try:
        ctx = TelegramContext.from_state(request.app.state, runtime.bot)
        outcome = await handle_update(update, ctx)
    except Exception:
        # Not stored, so not acknowledged: Telegram delivers it again later.
        logger.exception("Telegram update %s could not be stored", update.update_id)
        return JSONResponse(
            {"detail": "The update could not be stored; try again."},
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
    return JSONResponse({"ok": True, "outcome": outcome.value})


def _parse(body: bytes, bot: Bot) -> Update:
    """The update in a webhook body; 400 for anything else (logged without its content)."""
    try:
        data: Any = json.loads(body)
    except (ValueError, RecursionError):
        logger.warning("refused a Telegram webhook body that is not JSON (%d bytes)", len(body))
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail="The body is not JSON.") from None
    update_id = data.get("update_id") if isinstance(data, dict) else None
    if not isinstance(update_id, int) or isinstance(update_id, bool):
        logger.warning("refused a Telegram webhook body that is not an update")
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail="The body is not an update.")
    try:
        return Update.de_json(data, bot)
    except Exception as exc:
        logger.warning("refused Telegram update %s: %s", update_id, type(exc).__name__)
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, detail="The update could not be read."
        ) from None
