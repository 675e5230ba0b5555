"""The token-protected API the action server uses; it never reaches the database itself."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from bot.api.internal import cases, guidance, handoffs, posts, travel
from bot.api.internal.auth import TOKEN_HEADER, require_internal_token

__all__ = ["TOKEN_HEADER", "router"]

router = APIRouter(
    prefix="/api/internal",
    tags=["internal"],
    dependencies=[Depends(require_internal_token)],
)
for module in (posts, guidance, travel, cases, handoffs):
    router.include_router(module.router)
