"""The outbox worker: an in-process task that delivers due items through channel senders.

It wakes when a reply is queued and polls besides, so an item whose retry
falls due, or one left leased by a crashed process, is picked up. Items for
different recipients go out concurrently; one recipient's go out in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Mapping

from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from bot.conversations.events import EventHub
from bot.db.models import Message, utcnow
from bot.db.session import session_scope
from bot.outbox import store
from bot.outbox.sending import (
    ChannelSender,
    Outgoing,
    PermanentSendError,
    SendError,
    SendResult,
    UndeliverableError,
)
from bot.outbox.store import Backoff

logger = logging.getLogger(__name__)

LEASE_SECONDS = 120.0


class OutboxWorker:
    """Delivers queued replies; every outcome is written back to the row."""

    def __init__(
        self,
        *,
        session_factory: sessionmaker[Session],
        senders: Mapping[str, ChannelSender],
        backoff: Backoff,
        hub: EventHub,
        poll_seconds: float,
    ):
        self._sessions = session_factory
        self._senders = dict(senders)
        self._backoff = backoff
        self._hub = hub
        self._poll_seconds = poll_seconds
        self._wakeup = asyncio.Event()

    def wake(self) -> None:
        """Something was queued: look now rather than at the next poll."""
        self._wakeup.set()

    async def run(self) -> None:
        """Delivers until cancelled; an unexpected error is logged, never fatal."""
        while True:
            try:
                await self.drain_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("outbox pass failed; trying again shortly")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=self._poll_seconds)
            self._wakeup.clear()

    async def drain_once(self) -> int:
        """One pass over what is due; returns how many items were attempted."""
        claimed = await run_in_threadpool(self._claim)
        if not claimed:
            return 0
        runs: dict[tuple[str, str], list[Outgoing]] = defaultdict(list)
        for outgoing in claimed:
            runs[(outgoing.channel, outgoing.recipient)].append(outgoing)
        await asyncio.gather(*(self._send_run(run) for run in runs.values()))
        return len(claimed)

    def _claim(self) -> list[Outgoing]:
        with session_scope(self._sessions) as session:
            return store.claim_due(session=session, now=utcnow(), lease_seconds=LEASE_SECONDS)

    async def _send_run(self, run: list[Outgoing]) -> None:
        for index, outgoing in enumerate(run):
            if not await self._send_one(outgoing):
                # Keep the order: what follows waits for the failed item's retry.
                await run_in_threadpool(self._release, run[index + 1 :])
                return

    async def _send_one(self, outgoing: Outgoing) -> bool:
        sender = self._senders.get(outgoing.channel)
        if sender is None:
            await self._settle(outgoing, error=f"no sender for channel {outgoing.channel}")
            return False
        try:
            result = await sender.send(outgoing)
        except UndeliverableError as exc:
            logger.warning("message %s undeliverable: %s", outgoing.message_id, exc)
            await self._settle(outgoing, error=str(exc), final=True, undeliverable=True)
            return True  # nothing later is blocked by a message that cannot go
        except PermanentSendError as exc:
            logger.warning("message %s refused by %s: %s", outgoing.message_id, sender.channel, exc)
            await self._settle(outgoing, error=str(exc), final=True)
            return True
        except SendError as exc:
            logger.info(
                "message %s not sent (attempt %s): %s", outgoing.message_id, outgoing.attempt, exc
            )
            await self._settle(outgoing, error=str(exc))
            return False
        except Exception as exc:  # a bug or an unexpected library error: retry, loudly
            logger.exception("sender %s crashed on message %s", sender.channel, outgoing.message_id)
            await self._settle(outgoing, error=repr(exc))
            return False
        await self._settle(outgoing, result=result)
        return True

    async def _settle(
        self,
        outgoing: Outgoing,
        *,
        result: SendResult | None = None,
        error: str = "",
        final: bool = False,
        undeliverable: bool = False,
    ) -> None:
        def write() -> Message:
            with session_scope(self._sessions) as session:
                if result is not None:
                    return store.mark_sent(session=session, item_id=outgoing.item_id, result=result)
                if final:
                    return store.mark_final(
                        session=session,
                        item_id=outgoing.item_id,
                        error=error,
                        undeliverable=undeliverable,
                    )
                return store.mark_retry(
                    session=session, item_id=outgoing.item_id, error=error, backoff=self._backoff
                )

        message = await run_in_threadpool(write)
        self._hub.publish(
            outgoing.conversation_id,
            {
                "type": "delivery",
                "message_id": message.id,
                "state": message.delivery_state.value,
            },
        )

    def _release(self, rest: list[Outgoing]) -> None:
        if not rest:
            return
        with session_scope(self._sessions) as session:
            store.release(session=session, item_ids=[outgoing.item_id for outgoing in rest])
