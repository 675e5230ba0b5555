"""The Telegram Bot API client: how it is built, kept quiet, and how its webhook is registered.

The bot token is a password that also appears in every Bot API URL
(``https://api.telegram.org/bot<token>/sendMessage``), so nothing here logs a
URL, and every error text that may leave this package goes through
:func:`redact` first.
"""

from __future__ import annotations

import logging
import re

from telegram import Bot, WebhookInfo
from telegram.error import TelegramError

from bot.core.config import Settings

CHANNEL = "telegram"
WEBHOOK_PATH = "/webhooks/telegram"
# Everything the adapter handles; Telegram sends nothing else.
ALLOWED_UPDATES = ("message", "callback_query")
# Telegram's own rule for X-Telegram-Bot-Api-Secret-Token.
SECRET_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
MIN_SECRET_LENGTH = 16
# Telegram delivers webhooks to these ports only.
WEBHOOK_PORTS = frozenset({443, 80, 88, 8443})
REDACTED = "<telegram-bot-token>"

# httpx logs each request URL at INFO, and python-telegram-bot logs its base
# URL at DEBUG: both carry the token.
_TOKEN_LOGGERS = {"httpx": logging.WARNING, "telegram": logging.INFO}


class TelegramSetupError(Exception):
    """Settings needed for Telegram are missing or unusable; the text says which."""


def quiet_token_loggers() -> None:
    """Raises the level of the loggers that would write the bot token."""
    for name, level in _TOKEN_LOGGERS.items():
        logger = logging.getLogger(name)
        logger.setLevel(max(logger.level, level))


def redact(text: object, token: str) -> str:
    """``text`` with the bot token (and its secret half) replaced."""
    value = str(text)
    if token:
        value = value.replace(token, REDACTED)
        _, _, secret = token.partition(":")
        if len(secret) >= 8:
            value = value.replace(secret, REDACTED)
    return value


def make_bot(settings: Settings) -> Bot:
    """A Bot for the configured token and API base URLs (not initialised yet)."""
    if not settings.telegram_bot_token:
        raise TelegramSetupError(
            "Telegram is not configured: set CONSULAR_TELEGRAM_BOT_TOKEN to the token BotFather "
            "gave you."
        )
    quiet_token_loggers()
    return Bot(
        settings.telegram_bot_token,
        base_url=settings.telegram_api_base_url,
        base_file_url=settings.telegram_file_base_url,
    )


def webhook_url(settings: Settings) -> str:
    """Where Telegram should post updates, checked against Telegram's rules."""
    base = settings.public_base_url.rstrip("/")
    if not base.startswith("https://"):
        raise TelegramSetupError(
            "Telegram delivers webhooks only to https URLs: set CONSULAR_PUBLIC_BASE_URL to the "
            f"app's public https address (now {settings.public_base_url!r}), or use "
            "CONSULAR_TELEGRAM_MODE=polling for local use."
        )
    host_port = base.removeprefix("https://").split("/", 1)[0]
    _, colon, port = host_port.rpartition(":")
    if colon and port.isdigit() and int(port) not in WEBHOOK_PORTS:
        raise TelegramSetupError(
            f"Telegram delivers webhooks only to ports {', '.join(map(str, sorted(WEBHOOK_PORTS)))}"
            f"; CONSULAR_PUBLIC_BASE_URL uses {port}."
        )
    return f"{base}{WEBHOOK_PATH}"


def check_secret(settings: Settings) -> str:
    """The webhook secret, once it is usable as X-Telegram-Bot-Api-Secret-Token."""
    secret = settings.telegram_webhook_secret
    if not secret:
        raise TelegramSetupError(
            "Set CONSULAR_TELEGRAM_WEBHOOK_SECRET: without it the webhook refuses every request. "
            f"Use at least {MIN_SECRET_LENGTH} characters from A-Z, a-z, 0-9, _ and -, e.g. "
            "the output of: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    if not SECRET_PATTERN.fullmatch(secret) or len(secret) < MIN_SECRET_LENGTH:
        raise TelegramSetupError(
            "CONSULAR_TELEGRAM_WEBHOOK_SECRET must be "
            f"{MIN_SECRET_LENGTH}-256 characters from A-Z, a-z, 0-9, _ and -."
        )
    return secret


async def set_webhook(settings: Settings, *, drop_pending_updates: bool = False) -> str:
    """Registers the app's webhook URL and secret with Telegram; returns what was done."""
    url = webhook_url(settings)
    secret = check_secret(settings)
    bot = make_bot(settings)
    try:
        async with bot:
            await bot.set_webhook(
                url=url,
                secret_token=secret,
                allowed_updates=list(ALLOWED_UPDATES),
                drop_pending_updates=drop_pending_updates,
            )
            info = await bot.get_webhook_info()
    except TelegramError as exc:
        raise TelegramSetupError(_telegram_said(exc, settings)) from None
    return f"webhook set to {url}\n{describe_webhook(info)}"


async def delete_webhook(settings: Settings, *, drop_pending_updates: bool = False) -> str:
    """Removes the webhook (updates then wait for polling); returns what was done."""
    bot = make_bot(settings)
    try:
        async with bot:
            await bot.delete_webhook(drop_pending_updates=drop_pending_updates)
    except TelegramError as exc:
        raise TelegramSetupError(_telegram_said(exc, settings)) from None
    dropped = " and dropped pending updates" if drop_pending_updates else ""
    return f"webhook deleted{dropped}"


async def webhook_status(settings: Settings) -> str:
    """What Telegram knows about the webhook."""
    bot = make_bot(settings)
    try:
        async with bot:
            info = await bot.get_webhook_info()
    except TelegramError as exc:
        raise TelegramSetupError(_telegram_said(exc, settings)) from None
    return describe_webhook(info)


def describe_webhook(info: WebhookInfo) -> str:
    """A few lines an operator can read."""
    lines = [
        f"url: {info.url or '(none: updates wait for polling)'}",
        f"pending updates: {info.pending_update_count}",
    ]
    if info.allowed_updates:
        lines.append(f"allowed updates: {', '.join(info.allowed_updates)}")
    if info.last_error_message:
        lines.append(f"last error: {info.last_error_message}")
    return "\n".join(lines)


def _telegram_said(exc: TelegramError, settings: Settings) -> str:
    # InvalidToken raised while initialising quotes the token itself.
    return f"Telegram refused: {redact(exc.message, settings.telegram_bot_token)}"
