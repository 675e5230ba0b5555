"""``/healthz``: the state of the database, Rasa and the action server."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from bot.core.config import Settings

router = APIRouter(tags=["health"])


async def _database(request: Request) -> dict[str, Any]:
    def ping() -> None:
        with request.app.state.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    await run_in_threadpool(ping)
    return {}


async def _rasa(request: Request) -> dict[str, Any]:
    settings: Settings = request.app.state.settings
    status = await request.app.state.rasa.status(settings.health_timeout_seconds)
    return {"model": str(status.get("model_id") or status.get("model_file"))}


async def _action_server(request: Request) -> dict[str, Any]:
    settings: Settings = request.app.state.settings
    http: httpx.AsyncClient = request.app.state.http
    response = await http.get(
        f"{settings.action_server_url.rstrip('/')}/health",
        timeout=settings.health_timeout_seconds,
    )
    response.raise_for_status()
    return {}


async def _check(name: str, probe: Any, request: Request) -> tuple[str, dict[str, Any]]:
    try:
        details = await probe(request)
    except Exception as exc:  # noqa: BLE001 - any failure means "down", and says why
        return name, {"ok": False, "error": type(exc).__name__}
    return name, {"ok": True, **details}


@router.get("/healthz")
async def healthz(request: Request) -> JSONResponse:
    """200 when every component answers, 503 naming the ones that do not."""
    results = await asyncio.gather(
        _check("database", _database, request),
        _check("rasa", _rasa, request),
        _check("action_server", _action_server, request),
    )
    components = dict(results)
    healthy = all(component["ok"] for component in components.values())
    return JSONResponse(
        {"status": "ok" if healthy else "unavailable", "components": components},
        status_code=200 if healthy else 503,
    )
