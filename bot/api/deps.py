"""Request dependencies: one short database session per request."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from bot.db.session import session_scope


def get_session(request: Request) -> Iterator[Session]:
    """A session for this request, committed when the handler succeeds."""
    with session_scope(request.app.state.session_factory) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
