"""Talks to the Rasa server over its REST channel; the sender is the conversation UUID."""

from __future__ import annotations

import logging
from typing import Any

import httpx

from bot.conversations.replies import BotReply, parse_rasa_output

logger = logging.getLogger(__name__)


class AssistantUnavailable(Exception):
    """Rasa (or the action server behind it) could not answer this turn."""


class RasaClient:
    """A thin async client of Rasa's REST webhook and status endpoints."""

    def __init__(self, *, http: httpx.AsyncClient, base_url: str, token: str, timeout: float):
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._token = token
        self._timeout = timeout

    async def send(self, *, sender_id: str, text: str) -> list[BotReply]:
        """Sends one citizen message and returns the bot's replies to it."""
        try:
            response = await self._http.post(
                f"{self._base_url}/webhooks/rest/webhook",
                json={"sender": sender_id, "message": text},
                timeout=self._timeout,
            )
            response.raise_for_status()
            replies = parse_rasa_output(response.json())
        except (httpx.HTTPError, ValueError) as exc:
            raise AssistantUnavailable(f"Rasa did not answer: {exc!r}") from exc
        if not replies:
            # Every turn we design says something; silence means an action
            # failed inside Rasa (e.g. the action server is down).
            raise AssistantUnavailable("Rasa answered with no reply")
        return replies

    async def status(self, wait_seconds: float) -> dict[str, Any]:
        """Rasa's status (needs the auth token); raises when down or without a model."""
        response = await self._http.get(
            f"{self._base_url}/status", params={"token": self._token}, timeout=wait_seconds
        )
        response.raise_for_status()
        body = response.json()
        if not isinstance(body, dict) or not body.get("model_file"):
            raise AssistantUnavailable("Rasa has no model loaded")
        return body
