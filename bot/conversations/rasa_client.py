"""Talks to the Rasa server over its REST channel; the sender is the conversation UUID.

Several Rasa servers may share the work (``CONSULAR_RASA_URL`` lists their
base URLs, separated by commas): each runs on its own core, and each
conversation always goes to the same one, chosen by a stable hash of its id.
That keeps every server's in-memory trackers right (components/tracker_store.py:
a server must be the only writer of the conversations it caches) without a
shared lock store; the app already runs one turn at a time per conversation.
Changing the list moves conversations between servers, so restart the Rasa
servers with the app when it changes.

Each server is sent at most ``concurrency`` turns at a time; the others wait
their turn in the order they came. A Rasa server works on one turn at a time
on its event loop, so a turn sent while several are in flight only waits
there instead, interleaved with the others: every turn in flight slows down,
and one that visits the server more often (a turn that runs custom actions
goes back to it after each) waits longest. Measured with ten conversations
on two cores (alternating blocks on one stack), three turns in flight per
server kept the throughput and CPU time of no limit and brought the 95th
percentile from about 1.75 to about 1.35 times the mean; two cost a few per
cent of throughput for about 1.3. The wait counts towards the turn's timeout.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from typing import Any

import aiohttp
import httpx

from bot.conversations.replies import BotReply, parse_rasa_output

logger = logging.getLogger(__name__)

# Seconds an idle connection to Rasa is kept for the next message.
KEEPALIVE_SECONDS = 2.0
# Turns in flight at once on each Rasa server (0: no limit); see above.
DEFAULT_CONCURRENCY = 3


class AssistantUnavailable(Exception):
    """Rasa (or the action server behind it) could not answer this turn."""


def rasa_base_urls(setting: str) -> list[str]:
    """The base URLs in ``setting`` (one, or several separated by commas), without a trailing /."""
    urls = [url.strip().rstrip("/") for url in setting.split(",") if url.strip()]
    if not urls:
        raise ValueError("no Rasa URL configured")
    return urls


def server_index(sender_id: str, servers: int) -> int:
    """Which of ``servers`` Rasa servers handles a conversation: the same one every time.

    A hash of the id, not Python's ``hash()``, which differs between processes
    and restarts.
    """
    digest = hashlib.blake2b(sender_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % servers


class RasaClient:
    """A thin async client of Rasa's REST webhook and status endpoints.

    Messages go through aiohttp, which spends a fraction of httpx's CPU time
    on each request (measured on the message path, where every citizen
    message makes one); the rare status checks use the app's httpx client.
    Call :meth:`aclose` when done.
    """

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        base_url: str,
        token: str,
        timeout: float,
        concurrency: int = DEFAULT_CONCURRENCY,
    ):
        self._http = http
        self._base_urls = rasa_base_urls(base_url)
        self._token = token
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        # One FIFO gate per server: asyncio's semaphore wakes its waiters in
        # the order they came, and one arriving later queues behind them.
        self._gates = [
            asyncio.Semaphore(concurrency) if concurrency > 0 else None for _ in self._base_urls
        ]

    def base_url_for(self, sender_id: str) -> str:
        """The Rasa server that handles this conversation."""
        return self._base_urls[self._server_of(sender_id)]

    def _server_of(self, sender_id: str) -> int:
        """The place of the conversation's server in the list (and of its gate)."""
        return server_index(sender_id, len(self._base_urls))

    def _messages_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                # Idle connections are closed here before Rasa's server
                # (Sanic, 5 s) would close them under a request.
                connector=aiohttp.TCPConnector(keepalive_timeout=KEEPALIVE_SECONDS),
                timeout=aiohttp.ClientTimeout(total=self._timeout),
            )
        return self._session

    async def aclose(self) -> None:
        """Closes the connections kept for messages."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, *, sender_id: str, text: str) -> list[BotReply]:
        """Sends one citizen message and returns the bot's replies to it.

        Waits first while the conversation's server has its fill of turns in
        flight; the wait and the request together get the timeout.
        """
        index = self._server_of(sender_id)
        base_url, gate = self._base_urls[index], self._gates[index]
        try:
            async with asyncio.timeout(self._timeout):
                if gate is None:
                    body = await self._post(base_url, sender_id, text)
                else:
                    async with gate:
                        body = await self._post(base_url, sender_id, text)
            replies = parse_rasa_output(body)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise AssistantUnavailable(f"Rasa did not answer: {exc!r}") from exc
        if not replies:
            # Every turn we design says something; silence means an action
            # failed inside Rasa (e.g. the action server is down).
            raise AssistantUnavailable("Rasa answered with no reply")
        return replies

    async def _post(self, base_url: str, sender_id: str, text: str) -> Any:
        async with self._messages_session().post(
            f"{base_url}/webhooks/rest/webhook",
            json={"sender": sender_id, "message": text},
        ) as response:
            response.raise_for_status()
            return json.loads(await response.read())

    async def status(self, wait_seconds: float) -> dict[str, Any]:
        """Rasa's status (needs the auth token); raises when any server is down or has no model.

        Every server must be up: the conversations routed to one that is down
        could not be answered. Returns the first server's status.
        """
        bodies = [await self._status_of(url, wait_seconds) for url in self._base_urls]
        return bodies[0]

    async def _status_of(self, base_url: str, wait_seconds: float) -> dict[str, Any]:
        response = await self._http.get(
            f"{base_url}/status", params={"token": self._token}, timeout=wait_seconds
        )
        response.raise_for_status()
        body = response.json()
        if not isinstance(body, dict) or not body.get("model_file"):
            raise AssistantUnavailable("Rasa has no model loaded")
        return body
