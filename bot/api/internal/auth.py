"""Who may call the internal API: the private network, with the shared token."""

from __future__ import annotations

import hmac
import ipaddress
from typing import Annotated

from fastapi import Header, HTTPException, Request, status

from bot.core.config import Settings

TOKEN_HEADER = "X-Internal-Token"


def _client_allowed(host: str | None, settings: Settings) -> bool:
    if host is None:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if address.is_loopback:
        return True
    return settings.internal_api_allow_private_networks and address.is_private


async def require_internal_token(
    request: Request,
    token: Annotated[str | None, Header(alias=TOKEN_HEADER)] = None,
) -> None:
    """Refuses callers off the private network or without the shared token.

    Async, as it waits for nothing: FastAPI would run a plain function in
    the thread pool, a trip on every call of the internal API.
    """
    settings: Settings = request.app.state.settings
    client = request.client.host if request.client else None
    if not _client_allowed(client, settings):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="Not available from this network.")
    if token is None or not hmac.compare_digest(
        token.encode(), settings.internal_api_token.encode()
    ):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail="Missing or wrong internal token.")
