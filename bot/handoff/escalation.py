"""Paging the on-call supervisor when an urgent handoff waits too long.

An urgent entry nobody has taken within ``after`` is paged by SMS to every
supervisor on call now (from the rota), and paged again every ``repeat``
until someone takes it. Pages carry no personal data: the topic, the
country, how long it has waited and where the console is.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from bot import audit
from bot.db.models import Handoff, utcnow
from bot.db.session import session_scope
from bot.handoff import rota

logger = logging.getLogger(__name__)

FAILED_RETRY = timedelta(minutes=1)


class Pager(Protocol):
    """Sends one short text to a phone; raises on failure."""

    async def page(self, phone: str, text: str) -> None:
        """Delivers ``text`` to ``phone``."""
        ...


class TwilioSmsPager:
    """Pages through Twilio's Messages API from the service's SMS number."""

    def __init__(self, *, client: object, from_: str):
        self._client = client
        self._from = from_

    async def page(self, phone: str, text: str) -> None:
        await self._client.messages.create_async(  # type: ignore[attr-defined]
            to=phone, from_=self._from, body=text
        )


@dataclass(frozen=True)
class _Due:
    handoff_id: int
    topic: str | None
    country: str | None
    waited_minutes: int
    escalations: int


class Escalator:
    """Finds urgent handoffs waiting too long and pages whoever is on call."""

    def __init__(
        self,
        *,
        session_factory: sessionmaker[Session],
        pager: Pager | None,
        after: timedelta,
        repeat: timedelta,
        console_url: str,
    ):
        self._sessions = session_factory
        self._pager = pager
        self._after = after
        self._repeat = repeat
        self._console_url = console_url

    async def check_once(self, now: datetime | None = None) -> int:
        """Pages for every due handoff; returns how many handoffs were paged."""
        now = now or utcnow()
        due, phones = await run_in_threadpool(self._due, now)
        paged = 0
        for entry in due:
            reached = await self._page_all(entry, phones)
            await run_in_threadpool(self._record, entry, now, reached)
            if reached:
                paged += 1
        return paged

    async def run(self, poll_seconds: float) -> None:
        """Checks until cancelled."""
        while True:
            try:
                await self.check_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("escalation check failed; trying again shortly")
            await asyncio.sleep(poll_seconds)

    async def _page_all(self, entry: _Due, phones: list[tuple[str, str]]) -> list[str]:
        if self._pager is None:
            logger.error(
                "urgent handoff %s waits, but no SMS pager is configured", entry.handoff_id
            )
            return []
        if not phones:
            logger.error("urgent handoff %s waits, and no supervisor is on call", entry.handoff_id)
            return []
        text = (
            f"URGENT consular handoff waiting {entry.waited_minutes} min"
            f" ({entry.topic or 'topic unknown'}, {entry.country or 'country unknown'})."
            f" Nobody has taken it. Open the console: {self._console_url}"
        )
        reached = []
        for email, phone in phones:
            try:
                await self._pager.page(phone, text)
            except Exception:
                logger.exception("paging %s for handoff %s failed", email, entry.handoff_id)
                continue
            reached.append(email)
        return reached

    def _due(self, now: datetime) -> tuple[list[_Due], list[tuple[str, str]]]:
        with session_scope(self._sessions) as session:
            handoffs = session.scalars(
                select(Handoff).where(
                    Handoff.closed_at.is_(None),
                    Handoff.officer_id.is_(None),
                    Handoff.priority > 0,
                    Handoff.queued_at <= now - self._after,
                    or_(
                        Handoff.escalated_at.is_(None),
                        Handoff.escalated_at <= now - self._repeat,
                    ),
                )
            ).all()
            due = [
                _Due(
                    handoff_id=handoff.id,
                    topic=handoff.topic,
                    country=handoff.country,
                    waited_minutes=int(
                        (now - _aware(handoff.queued_at, now)).total_seconds() // 60
                    ),
                    escalations=handoff.escalations,
                )
                for handoff in handoffs
            ]
            if not due:
                return [], []
            supervisors = rota.on_call_supervisors(rota.load_officers(session), now)
            return due, [(officer.email, officer.phone or "") for officer in supervisors]

    def _record(self, entry: _Due, now: datetime, reached: list[str]) -> None:
        with session_scope(self._sessions) as session:
            handoff = session.get_one(Handoff, entry.handoff_id)
            if reached:
                handoff.escalated_at = now
                handoff.escalations += 1
            else:
                # Nobody reached: try again in a minute, not at the next poll.
                handoff.escalated_at = now - self._repeat + FAILED_RETRY
            audit.record(
                session=session,
                actor="system:escalation",
                action="handoff.escalate" if reached else "handoff.escalate_failed",
                subject=handoff.conversation_id,
                details={"handoff": handoff.id, "paged": reached, "round": handoff.escalations},
            )


def _aware(moment: datetime, now: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=now.tzinfo)
