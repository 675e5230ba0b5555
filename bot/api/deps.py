"""Request dependencies: one short database session per request."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from bot.db.session import session_scope


def get_session(request: Request) -> Iterator[Session]:
    """A session for this request, committed when the handler succeeds."""
    with session_scope(request.app.state.session_factory) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]

T = TypeVar("T")


async def in_session(request: Request, work: Callable[[Session], T]) -> T:
    """Runs ``work`` in one short session, in one trip to the thread pool.

    A sync endpoint with ``SessionDep`` takes three (the dependency's start,
    the endpoint, the dependency's end). The lookups the action server makes
    on the message path use this instead.
    """
    factory = request.app.state.session_factory

    def run() -> T:
        with session_scope(factory) as session:
            return work(session)

    return await run_in_threadpool(run)
