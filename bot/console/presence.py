"""Officers who leave without signing out stop counting as online.

Signing out sets an officer offline at once. A session that simply ends
(the browser closed, the idle or absolute limit passed) is noticed in two
places: whenever a request or the console's websocket finds it expired,
and by this periodic sweep in the app, which needs no request at all. In
both cases the officer goes offline only when no other live session of
theirs is left (signed in on two computers, one of them still in use).
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from bot.console import auth
from bot.db.session import session_scope

logger = logging.getLogger(__name__)

# How often the app looks for expired sessions: an officer who left without
# signing out stops counting as online at most this long after their session expired.
SWEEP_SECONDS = 30.0


def sweep(factory: sessionmaker[Session], policy: auth.SessionPolicy) -> auth.Expiry:
    """Removes expired sessions and sets offline the officers left without one."""
    with session_scope(factory) as session:
        expiry = auth.expire(session=session, policy=policy)
    if expiry.offline:
        logger.info("console sessions expired: %d officer(s) set offline", len(expiry.offline))
    return expiry


async def run_sweeps(
    factory: sessionmaker[Session], policy: auth.SessionPolicy, interval: float
) -> None:
    """Sweeps every ``interval`` seconds until cancelled; a failed sweep is retried next time."""
    while True:
        try:
            await run_in_threadpool(sweep, factory, policy)
        except Exception:
            logger.exception("the console session sweep failed; trying again later")
        await asyncio.sleep(interval)
