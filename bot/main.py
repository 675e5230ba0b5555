"""The FastAPI application: wires settings, database, Rasa client and routers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import httpx
from fastapi import FastAPI, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from bot.admin import articles as admin_articles
from bot.admin import common as admin_common
from bot.admin import dashboard as admin_dashboard
from bot.admin import data as admin_data
from bot.admin import learning as admin_learning
from bot.admin import review as admin_review
from bot.admin import web as admin_web
from bot.api import health, internal
from bot.channels import telegram, twilio, webchat
from bot.console import live as console_live
from bot.console import presence as console_presence
from bot.console import web as console_web
from bot.conversations.events import EventHub
from bot.conversations.rasa_client import RasaClient
from bot.conversations.service import ConversationService
from bot.core.config import Settings, get_settings
from bot.core.heap import freeze_startup_heap
from bot.core.ratelimit import BodySizeLimit, RateLimiter
from bot.db.session import make_engine, make_session_factory
from bot.handoff.escalation import Escalator, TwilioSmsPager
from bot.outbox.sending import ChannelSender
from bot.outbox.store import Backoff
from bot.outbox.worker import OutboxWorker
from bot.web import pages

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Builds the app; everything process-wide is created here, once."""
    settings = settings or get_settings()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # httpx logs every request URL at INFO; Rasa's /status takes its auth token
    # in the query string, which must never reach a log.
    logging.getLogger("httpx").setLevel(logging.WARNING)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        session_factory = make_session_factory(engine)
        async with httpx.AsyncClient() as http:
            rasa = RasaClient(
                http=http,
                base_url=settings.rasa_url,
                token=settings.rasa_token,
                timeout=settings.rasa_timeout_seconds,
                concurrency=settings.rasa_concurrency,
            )
            hub = EventHub()
            senders: dict[str, ChannelSender] = {}
            background: list[asyncio.Task[None]] = []
            # -- channel senders (each channel adds its own) --
            twilio_api = twilio.TwilioApi.from_settings(settings)
            senders.update(twilio_api.senders if twilio_api is not None else {})
            app.state.telegram = await telegram.start(settings)
            if app.state.telegram is not None:
                senders[app.state.telegram.sender.channel] = app.state.telegram.sender
            # -- end of channel senders --
            worker = OutboxWorker(
                session_factory=session_factory,
                senders=senders,
                backoff=Backoff(
                    base_seconds=settings.outbox_backoff_seconds,
                    max_seconds=settings.outbox_backoff_max_seconds,
                    max_attempts=settings.outbox_max_attempts,
                ),
                hub=hub,
                poll_seconds=settings.outbox_poll_seconds,
            )
            app.state.settings = settings
            app.state.engine = engine
            app.state.session_factory = session_factory
            app.state.http = http
            app.state.rasa = rasa
            app.state.hub = hub
            app.state.conversations = ConversationService(
                session_factory=session_factory,
                rasa=rasa,
                hub=hub,
                emergency_phone=settings.emergency_phone,
                on_queued=worker.wake,
                stale_turn_seconds=2 * settings.rasa_timeout_seconds + 5,
            )
            app.state.outbox = worker
            app.state.senders = senders
            app.state.rate_limiter = RateLimiter(
                storage_uri=settings.rate_limit_storage,
                per_sender=settings.rate_limit_per_sender,
                per_endpoint=settings.rate_limit_per_endpoint,
            )
            background.append(asyncio.create_task(worker.run(), name="outbox"))
            background.append(
                asyncio.create_task(
                    app.state.conversations.run_recovery(settings.recovery_poll_seconds),
                    name="recovery",
                )
            )
            # -- channel background tasks (each channel adds its own) --
            if twilio_api is not None:
                background.append(asyncio.create_task(twilio_api.hold_open(), name="twilio-api"))
            if app.state.telegram is not None:
                background.append(
                    asyncio.create_task(app.state.telegram.run(app.state), name="telegram")
                )
            # -- end of channel background tasks --
            # -- duty officers' console (issue 6) --
            app.state.console = console_web.ConsoleState.from_settings(settings)
            background.append(
                asyncio.create_task(
                    console_presence.run_sweeps(
                        session_factory, app.state.console.policy, console_presence.SWEEP_SECONDS
                    ),
                    name="console-sessions",
                )
            )
            # -- escalation: page the on-call supervisor for urgent waits --
            app.state.escalator = Escalator(
                session_factory=session_factory,
                pager=(
                    TwilioSmsPager(client=twilio_api.client, from_=settings.twilio_sms_from)
                    if twilio_api is not None and settings.twilio_sms_from
                    else None
                ),
                after=timedelta(seconds=settings.escalation_after_seconds),
                repeat=timedelta(seconds=settings.escalation_repeat_seconds),
                console_url=f"{settings.public_base_url.rstrip('/')}/console",
            )
            background.append(
                asyncio.create_task(
                    app.state.escalator.run(settings.escalation_poll_seconds), name="escalation"
                )
            )
            # Everything above lives as long as the process (bot/core/heap.py).
            freeze_startup_heap()
            try:
                yield
            finally:
                for task in background:
                    task.cancel()
                await asyncio.gather(*background, return_exceptions=True)
                await app.state.conversations.drain()
                await rasa.aclose()
        engine.dispose()

    app = FastAPI(
        title="Consular assistance service",
        summary="Web chat, channels and internal API of the consular assistant.",
        lifespan=lifespan,
    )
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_body_bytes,
        per_path={f"{admin_common.PREFIX}/import": settings.admin_import_max_bytes},
    )

    @app.exception_handler(RequestValidationError)
    async def _log_bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Logged by where and what kind of error, never with the citizen's text.
        kinds = sorted({str(error.get("type")) for error in exc.errors()})
        logger.warning("refused a malformed request to %s: %s", request.url.path, kinds)
        return await request_validation_exception_handler(request, exc)

    # The message path's routes first: each request is matched against the
    # routers in this order. (No two routers share a path.)
    app.include_router(webchat.router)
    app.include_router(internal.router)
    # -- channel routers --
    app.include_router(twilio.router)
    app.include_router(telegram.router)
    # -- end of channel routers --
    # -- duty officers' console (issue 6) --
    app.include_router(console_web.router)
    app.include_router(console_live.router)
    app.add_exception_handler(console_web.PageRefused, console_web.page_refused)
    # -- guidance admin (issue 7) --
    app.include_router(admin_web.router)
    app.include_router(admin_articles.router)
    app.include_router(admin_review.router)
    app.include_router(admin_data.router)  # posts, travel advice, import and export
    app.include_router(admin_learning.router)  # helpfulness, unanswered questions
    # -- insight dashboard (issue 8) --
    app.include_router(admin_dashboard.router)
    app.include_router(health.router)
    app.include_router(pages.router)
    pages.mount_static(app)
    return app
