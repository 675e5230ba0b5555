"""The console's pages and forms: sign-in, the queue, a conversation, officer actions.

Every POST carries the session's CSRF token (checked before anything else
happens); every action runs through :mod:`bot.handoff.actions` in a worker
thread, then wakes the outbox and tells live subscribers: the citizen's web
chat (the officer's message, on the conversation's key) and every console
(a queue event on :data:`~bot.console.events.CONSOLE_CHANNEL`). Pages are
server-rendered with GOV.UK Frontend and work without JavaScript; the
script only adds live updates and alerts.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeVar
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import HTTPConnection

from bot import audit
from bot.console import auth, views
from bot.console.events import CONSOLE_CHANNEL, queue_event
from bot.conversations.replies import transcript_json
from bot.core.config import Settings
from bot.db.models import (
    ACTOR_LENGTH,
    CannedReply,
    Conversation,
    DeliveryState,
    Handoff,
    Message,
    Officer,
    OfficerRole,
    Presence,
    utcnow,
)
from bot.db.session import session_scope
from bot.handoff import actions
from bot.seed.demo_console import DEMO_EMAILS
from bot.web.pages import TEMPLATES_DIR, content_security_policy, static_url

logger = logging.getLogger(__name__)

SERVICE_NAME: Final = "Duty officers' console"
PREFIX: Final = "/console"
SIGN_IN_PATH: Final = f"{PREFIX}/sign-in"
CODE_PATH: Final = f"{PREFIX}/sign-in/code"
ADMIN_PREFIX: Final = "/admin"
# One staff session for the console and the guidance admin.
COOKIE_PATH: Final = "/"
# Staff who work the console; editors and reviewers work only in the guidance admin.
CONSOLE_ROLES: Final = frozenset(
    {OfficerRole.OFFICER.value, OfficerRole.SUPERVISOR.value, OfficerRole.ADMIN.value}
)
_NEXT_AREAS: Final = (PREFIX, ADMIN_PREFIX)
MAX_NOTE_LENGTH: Final = 4000
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

# What a successful action says on the page it leads to (never echoes input).
DONE: Final = {
    "taken": "You have taken over this conversation. The citizen's messages now come to you.",
    "replied": "Your reply has been sent to the citizen.",
    "noted": "Your note has been added. The citizen cannot see it.",
    "transferred": "The conversation has been transferred.",
    "returned": "The conversation is back with the assistant, which has greeted the citizen.",
    "closed": "The conversation has been closed.",
    "presence": "Your status has been updated.",
}

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
router = APIRouter(prefix=PREFIX, include_in_schema=False)

T = TypeVar("T")


@dataclass(frozen=True)
class ConsoleState:
    """The console's process-wide parts, made once at start-up."""

    policy: auth.SessionPolicy
    signer: auth.CookieSigner
    throttle: auth.SignInThrottle
    secure_cookies: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> ConsoleState:
        return cls(
            policy=auth.SessionPolicy.from_settings(settings),
            signer=auth.CookieSigner(settings),
            throttle=auth.SignInThrottle(
                storage_uri=settings.rate_limit_storage,
                per_account=settings.console_signin_limit_per_account,
                per_client=settings.console_signin_limit_per_client,
            ),
            secure_cookies=settings.public_base_url.startswith("https://"),
        )


class PageRefused(Exception):  # noqa: N818 - it carries the page, it is not an error
    """Raised with a ready-made page (a 403) that the app's handler sends as it is."""

    def __init__(self, response: Response):
        super().__init__("page refused")
        self.response = response


async def page_refused(_request: Request, exc: Exception) -> Response:
    """The app's exception handler for :class:`PageRefused`."""
    assert isinstance(exc, PageRefused)
    return exc.response


@dataclass(frozen=True)
class Who:
    """The signed-in officer, as a request sees them."""

    officer_id: int
    name: str
    email: str
    role: str
    timezone: str
    presence: str
    csrf_token: str
    session_key: str


# -- plumbing ----------------------------------------------------------------------------


def console_state(connection: HTTPConnection) -> ConsoleState:
    """The console's state (made on first use when the app did not make it)."""
    state = getattr(connection.app.state, "console", None)
    if state is None:
        state = ConsoleState.from_settings(connection.app.state.settings)
        connection.app.state.console = state
    assert isinstance(state, ConsoleState)
    return state


def _factory(request: Request) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = request.app.state.session_factory
    return factory


async def _unit(request: Request, work: Callable[[Session], T]) -> T:
    """Runs ``work`` in one short unit of work, in a worker thread."""
    factory = _factory(request)

    def run() -> T:
        with session_scope(factory) as session:
            return work(session)

    return await run_in_threadpool(run)


def security_headers(request: Request) -> dict[str, str]:
    """The console's and the admin's response headers: CSP, no sniffing, no caching."""
    return {
        "Content-Security-Policy": content_security_policy(request),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        # Citizens' words: never kept in a shared cache or the back-forward cache.
        "Cache-Control": "no-store",
    }


def _render(
    request: Request,
    template: str,
    context: Mapping[str, Any],
    *,
    status_code: int = 200,
) -> HTMLResponse:
    root = str(request.scope.get("root_path", "")).rstrip("/")
    full = {
        "service_name": SERVICE_NAME,
        "api_base": root,
        "console_base": f"{root}{PREFIX}",
        "static_url": lambda path: static_url(request, path),
        "who": None,
        "csrf_token": "",
        **context,
    }
    return templates.TemplateResponse(
        request, template, full, status_code=status_code, headers=security_headers(request)
    )


def _redirect(request: Request, path: str) -> RedirectResponse:
    root = str(request.scope.get("root_path", "")).rstrip("/")
    return RedirectResponse(f"{root}{path}", status_code=status.HTTP_303_SEE_OTHER)


def _set_cookie(request: Request, response: Response, name: str, value: str) -> None:
    response.set_cookie(
        name,
        value,
        httponly=True,
        samesite="strict",
        secure=console_state(request).secure_cookies,
        path=COOKIE_PATH,
    )


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def current(request: Request) -> Who | None:
    """The signed-in officer, or None (an expired session is removed)."""
    state = console_state(request)
    key = state.signer.session_key(request.cookies.get(auth.SESSION_COOKIE))
    if key is None:
        return None

    def read(session: Session) -> Who | None:
        row = auth.load(session=session, key=key, policy=state.policy)
        if row is None or row.officer is None:
            return None
        officer = row.officer
        return Who(
            officer_id=officer.id,
            name=officer.name,
            email=officer.email,
            role=officer.role.value,
            timezone=officer.timezone,
            presence=officer.presence.value,
            csrf_token=row.csrf_token,
            session_key=key,
        )

    return await _unit(request, read)


async def signed_in(request: Request) -> Who:
    """The signed-in officer; anyone else is sent to the sign-in page.

    Editors and reviewers share the staff sign-in but are not duty officers:
    they get a 403 page that sends them to the guidance admin.
    """
    who = await current(request)
    if who is None:
        root = str(request.scope.get("root_path", "")).rstrip("/")
        raise HTTPException(
            status.HTTP_303_SEE_OTHER, headers={"Location": f"{root}{SIGN_IN_PATH}"}
        )
    if who.role not in CONSOLE_ROLES:
        # Imported here: the admin's pages build on this module.
        from bot.admin import common

        raise PageRefused(common.refused(request, who, area="console"))
    return who


def safe_next(raw: str | None) -> str | None:
    """A local path under /console or /admin to go on to after sign-in, or None.

    Anything else (another host, a scheme, ``//`` or backslash tricks, control
    characters, paths elsewhere in the app) is dropped, so the sign-in page
    can never be used to send staff to another site.
    """
    if not raw or len(raw) > 500 or not raw.startswith("/"):
        return None
    if (
        raw.startswith("//")
        or "\\" in raw
        or any(ord(char) < 0x20 or ord(char) == 0x7F for char in raw)
    ):
        return None
    parts = urlsplit(raw)
    if parts.scheme or parts.netloc or ".." in parts.path.split("/"):
        return None
    for area in _NEXT_AREAS:
        if parts.path == area or parts.path.startswith(f"{area}/"):
            return raw
    return None


def landing(role: str, wanted: str | None) -> str:
    """Where a member of staff goes after signing in.

    Their ``next`` when their role works in that area; otherwise the console
    for officers, supervisors and admins, the guidance admin for editors and
    reviewers.
    """
    console_user = role in CONSOLE_ROLES
    if wanted is not None:
        in_console = wanted == PREFIX or wanted.startswith(f"{PREFIX}/")
        if console_user or not in_console:
            return wanted
    return PREFIX if console_user else ADMIN_PREFIX


async def checked_form(request: Request, who: Who) -> FormData:
    """The POSTed form, after its CSRF token matched the session's (403 otherwise)."""
    form = await request.form()
    given = form.get("csrf_token")
    if not auth.tokens_match(who.csrf_token, given if isinstance(given, str) else None):
        logger.warning("refused a console form without a valid CSRF token on %s", request.url.path)
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="The form has expired. Reload it.")
    return form


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _actor(who: Who) -> str:
    return f"officer:{who.email}"


# -- sign-in -----------------------------------------------------------------------------


@router.get("/sign-in", response_class=HTMLResponse)
async def sign_in_page(request: Request) -> Response:
    """Step one: email address and password."""
    wanted = safe_next(request.query_params.get("next"))
    who = await current(request)
    if who is not None:
        return _redirect(request, landing(who.role, wanted))
    notice = "You have signed out." if request.query_params.get("signed_out") else None
    return _password_form(request, error=None, notice=notice, wanted=wanted)


def _with_next(path: str, wanted: str | None) -> str:
    return f"{path}?next={quote(wanted, safe='/')}" if wanted else path


def _password_form(
    request: Request,
    *,
    error: str | None,
    notice: str | None = None,
    status_code: int = 200,
    wanted: str | None = None,
) -> HTMLResponse:
    token = auth.new_token()
    response = _render(
        request,
        "console/sign_in.html",
        {"error": error, "notice": notice, "csrf_token": token, "next_path": wanted},
        status_code=status_code,
    )
    _set_cookie(
        request, response, auth.SIGNIN_COOKIE, console_state(request).signer.signin_cookie(token)
    )
    return response


@router.post("/sign-in", response_class=HTMLResponse)
async def sign_in(request: Request) -> Response:
    """Checks the password (silently) and always moves on to the code."""
    state = console_state(request)
    form = await request.form()
    expected = state.signer.signin_token(request.cookies.get(auth.SIGNIN_COOKIE))
    given = form.get("csrf_token")
    if not auth.tokens_match(expected, given if isinstance(given, str) else None):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="The form has expired. Reload it.")
    email = _field(form, "email").strip()
    password = _field(form, "password")
    wanted = safe_next(_field(form, "next"))
    if not email or not password:
        return _password_form(
            request,
            error="Enter your email address and password.",
            status_code=400,
            wanted=wanted,
        )
    client = _client(request)
    if state.throttle.blocked(email=email, client=client):
        return _password_form(request, error=auth.THROTTLED_ERROR, status_code=429, wanted=wanted)
    local = request.app.state.settings.environment == "local"

    def start(session: Session) -> str:
        auth.purge_expired(session=session, policy=state.policy)
        officer = auth.find_officer(session=session, email=email)
        if officer is not None and officer.email in DEMO_EMAILS and not local:
            officer = None  # the published demo accounts never sign in outside local
        ok = auth.check_password(officer=officer, password=password)
        key, _row = auth.start_pending(
            session=session, email=email, officer=officer, password_ok=ok
        )
        return key

    key = await _unit(request, start)
    response = _redirect(request, _with_next(CODE_PATH, wanted))
    _set_cookie(request, response, auth.SESSION_COOKIE, state.signer.session_cookie(key))
    return response


@router.get("/sign-in/code", response_class=HTMLResponse)
async def code_page(request: Request) -> Response:
    """Step two: the code from the authenticator app."""
    state = console_state(request)
    key = state.signer.session_key(request.cookies.get(auth.SESSION_COOKIE))

    def read(session: Session) -> str | None:
        row = auth.load(session=session, key=key, policy=state.policy, stage=auth.STAGE_PENDING)
        return row.csrf_token if row is not None else None

    token = await _unit(request, read)
    wanted = safe_next(request.query_params.get("next"))
    if token is None:
        return _redirect(request, _with_next(SIGN_IN_PATH, wanted))
    return _render(
        request,
        "console/sign_in_code.html",
        {"csrf_token": token, "error": None, "next_path": wanted},
    )


@router.post("/sign-in/code", response_class=HTMLResponse)
async def sign_in_code(request: Request) -> Response:
    """Signs in when the password was right and the code is current and unused."""
    state = console_state(request)
    key = state.signer.session_key(request.cookies.get(auth.SESSION_COOKIE))
    form = await request.form()
    code = _field(form, "code")
    given = form.get("csrf_token")
    wanted = safe_next(_field(form, "next"))
    client = _client(request)

    def attempt(session: Session) -> tuple[str, str | None, str | None]:
        """(outcome, new session key, email or role): outcome is ok, failed, throttled, gone, csrf.

        The third part is the email address on failure (to count it) and the
        role on success (to choose where to go).
        """
        pending = auth.load(session=session, key=key, policy=state.policy, stage=auth.STAGE_PENDING)
        if pending is None:
            return "gone", None, None
        if not auth.tokens_match(pending.csrf_token, given if isinstance(given, str) else None):
            return "csrf", None, None
        email = pending.signin_email or ""
        if state.throttle.blocked(email=email, client=client):
            session.delete(pending)
            return "throttled", None, email
        officer = pending.officer
        ok = (
            officer is not None
            and officer.active
            and pending.password_ok
            and auth.accept_totp(session=session, officer=officer, code=code)
        )
        if not ok or officer is None:
            session.delete(pending)
            audit.record(
                session=session,
                actor=f"officer:{email}"[:ACTOR_LENGTH] if officer else "anonymous",
                action="console.sign_in_failed",
                subject=email[:ACTOR_LENGTH],
                details={"client": client},
            )
            return "failed", None, email
        new_key, _row = auth.activate(session=session, pending=pending)
        if officer.role.value in CONSOLE_ROLES:
            # Only duty staff count for the rota; an editor signing in is not on duty.
            officer.presence = Presence.ONLINE
            officer.presence_at = utcnow()
        audit.record(
            session=session,
            actor=f"officer:{officer.email}",
            action="console.sign_in",
            subject=officer.email,
            details={"client": client},
        )
        return "ok", new_key, officer.role.value

    outcome, new_key, detail = await _unit(request, attempt)
    if outcome == "gone":
        return _redirect(request, _with_next(SIGN_IN_PATH, wanted))
    if outcome == "csrf":
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="The form has expired. Reload it.")
    if outcome == "throttled":
        refused = _password_form(
            request, error=auth.THROTTLED_ERROR, status_code=429, wanted=wanted
        )
        refused.delete_cookie(auth.SESSION_COOKIE, path=COOKIE_PATH)
        return refused
    if outcome == "failed" or new_key is None:
        state.throttle.failed(email=detail or "", client=client)
        failed = _password_form(request, error=auth.GENERIC_ERROR, status_code=400, wanted=wanted)
        failed.delete_cookie(auth.SESSION_COOKIE, path=COOKIE_PATH)
        return failed
    response = _redirect(request, landing(detail or "", wanted))
    _set_cookie(request, response, auth.SESSION_COOKIE, state.signer.session_cookie(new_key))
    response.delete_cookie(auth.SIGNIN_COOKIE, path=COOKIE_PATH)
    return response


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    """Ends the session and sets the officer offline (from the console or the admin)."""
    who = await current(request)
    if who is None:
        return _redirect(request, SIGN_IN_PATH)
    await checked_form(request, who)

    def end(session: Session) -> None:
        auth.end(session=session, key=who.session_key)
        officer = session.get_one(Officer, who.officer_id)
        officer.presence = Presence.OFFLINE
        officer.presence_at = utcnow()
        audit.record(
            session=session, actor=_actor(who), action="console.sign_out", subject=who.email
        )

    await _unit(request, end)
    response = _redirect(request, f"{SIGN_IN_PATH}?signed_out=1")
    response.delete_cookie(auth.SESSION_COOKIE, path=COOKIE_PATH)
    return response


@router.post("/presence")
async def set_presence(request: Request) -> Response:
    """Online, away or offline: the rota counts only officers online."""
    who = await signed_in(request)
    form = await checked_form(request, who)
    try:
        presence = Presence(_field(form, "presence"))
    except ValueError:
        return _redirect(request, PREFIX)

    def write(session: Session) -> None:
        officer = session.get_one(Officer, who.officer_id)
        officer.presence = presence
        officer.presence_at = utcnow()
        audit.record(
            session=session,
            actor=_actor(who),
            action="console.presence",
            subject=who.email,
            details={"presence": presence.value},
        )

    await _unit(request, write)
    return _redirect(request, f"{PREFIX}?done=presence")


# -- the queue ---------------------------------------------------------------------------


def _rows(who: Who) -> Callable[[Session], list[views.QueueRow]]:
    def read(session: Session) -> list[views.QueueRow]:
        return views.queue_rows(session, session.get_one(Officer, who.officer_id))

    return read


@router.get("", response_class=HTMLResponse)
async def queue_page(request: Request) -> Response:
    """Open conversations: urgent first, then the longest waiting."""
    who = await signed_in(request)
    rows = await _unit(request, _rows(who))
    done = DONE.get(request.query_params.get("done", ""))
    return _render(
        request,
        "console/queue.html",
        {"who": who, "csrf_token": who.csrf_token, "rows": rows, "done": done, "page": "queue"},
    )


@router.get("/queue", response_class=HTMLResponse)
async def queue_fragment(request: Request) -> Response:
    """The queue table alone, for live refresh."""
    who = await signed_in(request)
    rows = await _unit(request, _rows(who))
    return _render(request, "console/_queue_table.html", {"who": who, "rows": rows})


# -- a conversation ----------------------------------------------------------------------


def _conversation_id(conversation_id: str) -> str:
    if not _UUID.match(conversation_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="There is no such conversation.")
    return conversation_id


async def _page(
    request: Request,
    who: Who,
    conversation_id: str,
    *,
    audited: bool,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    def read(session: Session) -> views.ConversationPage | None:
        officer = session.get_one(Officer, who.officer_id)
        if audited:
            try:
                conversation = actions.view(
                    session=session, officer=officer, conversation_id=conversation_id
                )
            except actions.HandoffError:
                return None
        else:
            found = session.get(Conversation, conversation_id)
            if found is None:
                return None
            conversation = found
        return views.conversation_page(session, officer, conversation)

    page = await _unit(request, read)
    if page is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="There is no such conversation.")
    done = None if error else DONE.get(request.query_params.get("done", ""))
    return _render(
        request,
        "console/conversation.html",
        {
            "who": who,
            "csrf_token": who.csrf_token,
            "c": page,
            "error": error,
            "done": done,
            "outcomes": actions.OUTCOMES,
            "max_reply": actions.MAX_REPLY_LENGTH,
            "page": "conversation",
        },
        status_code=status_code,
    )


@router.get("/conversations/{conversation_id}", response_class=HTMLResponse)
async def conversation_page(request: Request, conversation_id: str) -> Response:
    """The transcript, details, notes, and the officer's actions (an audited view)."""
    who = await signed_in(request)
    return await _page(request, who, _conversation_id(conversation_id), audited=True)


@dataclass
class _Done:
    """What an action changed, to publish after its commit."""

    done: str
    messages: list[dict[str, Any]]
    queued: bool
    queue_change: str | None
    urgent: bool = False
    note: bool = False


Action = Callable[[Session, Officer, Handoff | None, FormData], _Done]


async def _act(
    request: Request,
    conversation_id: str,
    action: Action,
    *,
    needs_handoff: bool = True,
    then: str | None = None,
) -> Response:
    """The common path of every conversation form: auth, CSRF, action, publish, redirect."""
    who = await signed_in(request)
    conversation_id = _conversation_id(conversation_id)
    form = await checked_form(request, who)
    raw_handoff = _field(form, "handoff_id")

    def work(session: Session) -> _Done:
        officer = session.get_one(Officer, who.officer_id)
        handoff = None
        if needs_handoff:
            handoff = session.get(Handoff, int(raw_handoff)) if raw_handoff.isdigit() else None
            if handoff is None or handoff.conversation_id != conversation_id:
                raise actions.HandoffError("This conversation is not in the queue.")
        elif session.get(Conversation, conversation_id) is None:
            raise actions.HandoffError("There is no such conversation.")
        return action(session, officer, handoff, form)

    try:
        result = await _unit(request, work)
    except actions.HandoffError as exc:
        code = 409 if isinstance(exc, actions.AlreadyTaken | actions.NotYours) else 400
        return await _page(
            request, who, conversation_id, audited=False, error=str(exc), status_code=code
        )
    _publish(request, conversation_id, result, who)
    target = then or f"{PREFIX}/conversations/{conversation_id}"
    return _redirect(request, f"{target}?done={result.done}")


def _publish(request: Request, conversation_id: str, result: _Done, who: Who) -> None:
    """After the commit: wake the outbox, tell the citizen's web chat and every console."""
    if result.queued:
        request.app.state.outbox.wake()
    hub = request.app.state.hub
    for item in result.messages:
        hub.publish(conversation_id, {"type": "message", "message": item})
    if result.queue_change is not None:
        hub.publish(
            CONSOLE_CHANNEL,
            queue_event(
                change=result.queue_change,
                conversation_id=conversation_id,
                urgent=result.urgent,
                by=who.name,
            ),
        )
    if result.note:
        hub.publish(CONSOLE_CHANNEL, {"type": "note", "conversation_id": conversation_id})


def _sent(message: Message) -> tuple[list[dict[str, Any]], bool]:
    return [transcript_json(message)], message.delivery_state == DeliveryState.QUEUED


@router.post("/conversations/{conversation_id}/take-over")
async def take_over(request: Request, conversation_id: str) -> Response:
    """Makes the officer its only owner; the loser of a race is told who has it."""

    def run(session: Session, officer: Officer, handoff: Handoff | None, _f: FormData) -> _Done:
        assert handoff is not None
        taken = actions.take_over(session=session, officer=officer, handoff_id=handoff.id)
        joined = actions.announce(session=session, officer=officer, handoff=taken, joined=True)
        items, queued = _sent(joined)
        return _Done("taken", items, queued, "taken", urgent=taken.priority > 0)

    return await _act(request, conversation_id, run)


@router.post("/conversations/{conversation_id}/reply")
async def reply(request: Request, conversation_id: str) -> Response:
    """Sends the officer's words to the citizen's channel."""

    def run(session: Session, officer: Officer, handoff: Handoff | None, form: FormData) -> _Done:
        assert handoff is not None
        text = _field(form, "text")
        canned = _field(form, "canned")
        if not text.strip() and canned.isdigit():
            ready = session.get(CannedReply, int(canned))
            text = ready.text if ready is not None else ""
        message = actions.reply(session=session, officer=officer, handoff_id=handoff.id, text=text)
        items, queued = _sent(message)
        return _Done("replied", items, queued, None)

    return await _act(request, conversation_id, run)


@router.post("/conversations/{conversation_id}/note")
async def note(request: Request, conversation_id: str) -> Response:
    """An internal note for colleagues; never published to the citizen."""

    def run(session: Session, officer: Officer, _h: Handoff | None, form: FormData) -> _Done:
        text = _field(form, "text")
        if len(text) > MAX_NOTE_LENGTH:
            raise actions.HandoffError(f"Notes can be at most {MAX_NOTE_LENGTH} characters.")
        actions.add_note(
            session=session, officer=officer, conversation_id=conversation_id, text=text
        )
        return _Done("noted", [], False, None, note=True)

    return await _act(request, conversation_id, run, needs_handoff=False)


@router.post("/conversations/{conversation_id}/transfer")
async def transfer(request: Request, conversation_id: str) -> Response:
    """Hands the conversation to a colleague."""

    def run(session: Session, officer: Officer, handoff: Handoff | None, form: FormData) -> _Done:
        assert handoff is not None
        raw = _field(form, "to")
        colleague = session.get(Officer, int(raw)) if raw.isdigit() else None
        if colleague is None:
            raise actions.HandoffError("Choose a colleague.")
        actions.transfer(session=session, officer=officer, handoff_id=handoff.id, to=colleague)
        passed = actions.announce(session=session, officer=colleague, handoff=handoff, joined=False)
        items, queued = _sent(passed)
        return _Done("transferred", items, queued, "transferred", urgent=handoff.priority > 0)

    return await _act(request, conversation_id, run)


@router.post("/conversations/{conversation_id}/return")
async def return_to_bot(request: Request, conversation_id: str) -> Response:
    """Gives the conversation back to the assistant, which greets the citizen back."""

    def run(session: Session, officer: Officer, handoff: Handoff | None, _f: FormData) -> _Done:
        assert handoff is not None
        greeting = actions.return_to_bot(session=session, officer=officer, handoff_id=handoff.id)
        items, queued = _sent(greeting)
        return _Done("returned", items, queued, "returned")

    return await _act(request, conversation_id, run, then=PREFIX)


@router.post("/conversations/{conversation_id}/close")
async def close(request: Request, conversation_id: str) -> Response:
    """Closes the handoff with an outcome code."""

    def run(session: Session, officer: Officer, handoff: Handoff | None, form: FormData) -> _Done:
        assert handoff is not None
        actions.close(
            session=session,
            officer=officer,
            handoff_id=handoff.id,
            outcome=_field(form, "outcome"),
        )
        return _Done("closed", [], False, "closed")

    return await _act(request, conversation_id, run, then=PREFIX)
