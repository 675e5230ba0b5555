"""What every page of the guidance admin shares: staff sign-in, roles, CSRF, rendering.

Staff sign in once, on the console's sign-in page (one session cookie covers
``/console`` and ``/admin``); this module only decides who may open what.
Page modules of the admin (articles, review, posts, travel advice, import and
export, feedback, unanswered questions, the dashboard) code against this
interface and nothing else of the sign-in::

    PREFIX: Final = "/admin"
    templates  # Jinja2Templates over bot/templates (the console's own instance)
    async def staff(request: Request, *roles: OfficerRole) -> Who
        # the signed-in staff member (the console's Who); not signed in -> 303 to
        # the sign-in page with a safe ``next`` back here; signed in but the role
        # is not in ``roles`` -> a 403 page. OfficerRole.ADMIN is always allowed.
        # No roles given = editor, reviewer, admin.
    async def checked_form(request: Request, who: Who) -> FormData
        # the POSTed form after its CSRF token matched the session's (403 otherwise)
    async def unit(request: Request, work: Callable[[Session], T]) -> T
        # one short unit of work (one transaction) in a worker thread
    def render(request, template, context, *, who, status_code=200) -> HTMLResponse
        # adds service_name, admin_base, static_url, who, csrf_token, the nav
        # (current section from context["section"]) and the security headers
    def redirect(request: Request, path: str) -> RedirectResponse
        # 303 to root_path + path, e.g. redirect(request, f"{PREFIX}/posts")
    def actor(who: Who) -> str  # the audit actor, "staff:<email>"

Templates extend ``admin/layout.html`` (blocks ``page_title`` and
``content``). The navigation's section keys are in :data:`SECTIONS`; a link
shows only to the roles allowed there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeVar
from urllib.parse import quote

from fastapi import HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from bot.console import web as console_web
from bot.console.web import PageRefused, Who
from bot.db.models import ACTOR_LENGTH, OfficerRole
from bot.db.session import session_scope
from bot.web.pages import static_url

__all__ = [
    "EDITING_ROLES",
    "PREFIX",
    "SECTIONS",
    "SERVICE_NAME",
    "SUPERVISING_ROLES",
    "Section",
    "Who",
    "actor",
    "checked_form",
    "redirect",
    "refused",
    "render",
    "staff",
    "templates",
    "unit",
]

PREFIX: Final = "/admin"
SERVICE_NAME: Final = "Guidance admin"
EDITING_ROLES: Final = (OfficerRole.EDITOR, OfficerRole.REVIEWER, OfficerRole.ADMIN)
SUPERVISING_ROLES: Final = (OfficerRole.SUPERVISOR, OfficerRole.ADMIN)
_CONSOLE_ONLY: Final = frozenset({OfficerRole.OFFICER.value, OfficerRole.SUPERVISOR.value})

# The console's instance: one set of templates, one environment, one base layout.
templates = console_web.templates

T = TypeVar("T")


@dataclass(frozen=True)
class Section:
    """One item of the admin's service navigation."""

    key: str
    label: str
    path: str
    roles: tuple[OfficerRole, ...]

    def open_to(self, role: str) -> bool:
        return role in {allowed.value for allowed in self.roles}


SECTIONS: Final = (
    Section("articles", "Articles", f"{PREFIX}/articles", EDITING_ROLES),
    Section("review", "Review", f"{PREFIX}/review", EDITING_ROLES),
    Section("posts", "Posts", f"{PREFIX}/posts", EDITING_ROLES),
    Section("travel-advice", "Travel advice", f"{PREFIX}/travel-advice", EDITING_ROLES),
    Section("import-export", "Import and export", f"{PREFIX}/import-export", EDITING_ROLES),
    Section("feedback", "Feedback", f"{PREFIX}/feedback", EDITING_ROLES),
    Section("unanswered", "Unanswered questions", f"{PREFIX}/unanswered", EDITING_ROLES),
    Section("dashboard", "Dashboard", f"{PREFIX}/dashboard", SUPERVISING_ROLES),
)


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def _here(request: Request) -> str:
    """This page's path and query without the root path: the ``next`` of a sign-in."""
    path = request.url.path
    root = _root(request)
    if root and path.startswith(root):
        path = path[len(root) :]
    query = request.url.query
    return f"{path}?{query}" if query else path


async def staff(request: Request, *roles: OfficerRole) -> Who:
    """The signed-in member of staff allowed here; a sign-in or a 403 page otherwise."""
    who = await console_web.current(request)
    if who is None:
        # After a POST there is no page to come back to: back to the admin's start.
        back = _here(request) if request.method == "GET" else PREFIX
        target = f"{_root(request)}{console_web.SIGN_IN_PATH}?next={quote(back, safe='/')}"
        raise HTTPException(status.HTTP_303_SEE_OTHER, headers={"Location": target})
    allowed = {role.value for role in (roles or EDITING_ROLES)} | {OfficerRole.ADMIN.value}
    if who.role not in allowed:
        raise PageRefused(refused(request, who))
    return who


def refused(request: Request, who: Who, *, area: str = "admin") -> HTMLResponse:
    """The 403 page: what this account is for, and a link to where it can work.

    ``area`` is where the refusal happened: "console" for an editor or reviewer
    at the duty console, "admin" for a page of the admin their role cannot open.
    """
    sections = [section for section in SECTIONS if section.open_to(who.role)]
    home = sections[0] if sections else None
    return render(
        request,
        "admin/refused.html",
        {
            "section": None,
            "console_user": who.role in _CONSOLE_ONLY,
            "home": home,
            "home_href": f"{_root(request)}{home.path}" if home else None,
            "area": area,
        },
        who=who,
        status_code=status.HTTP_403_FORBIDDEN,
    )


async def checked_form(request: Request, who: Who) -> FormData:
    """The POSTed form, after its CSRF token matched the session's (403 otherwise)."""
    return await console_web.checked_form(request, who)


async def unit(request: Request, work: Callable[[Session], T]) -> T:
    """Runs ``work`` in one short unit of work (one transaction), in a worker thread."""
    factory = request.app.state.session_factory

    def run() -> T:
        with session_scope(factory) as session:
            return work(session)

    return await run_in_threadpool(run)


def nav(request: Request, who: Who, current: str | None) -> list[dict[str, Any]]:
    """The navigation items this member of staff may open, the current one marked."""
    root = _root(request)
    return [
        {
            "key": section.key,
            "label": section.label,
            "href": f"{root}{section.path}",
            "current": section.key == current,
        }
        for section in SECTIONS
        if section.open_to(who.role)
    ]


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any],
    *,
    who: Who,
    status_code: int = 200,
) -> HTMLResponse:
    """A page of the admin, with the layout's context and the security headers."""
    root = _root(request)
    full = {
        "service_name": SERVICE_NAME,
        "api_base": root,
        "admin_base": f"{root}{PREFIX}",
        "console_base": f"{root}{console_web.PREFIX}",
        "static_url": lambda path: static_url(request, path),
        "who": who,
        "csrf_token": who.csrf_token,
        "nav": nav(request, who, context.get("section")),
        "console_open": who.role in console_web.CONSOLE_ROLES,
        **context,
    }
    return templates.TemplateResponse(
        request,
        template,
        full,
        status_code=status_code,
        headers=console_web.security_headers(request),
    )


def redirect(request: Request, path: str) -> RedirectResponse:
    """A 303 to ``path`` under the app's root path (after a POST: no resubmission)."""
    return RedirectResponse(f"{_root(request)}{path}", status_code=status.HTTP_303_SEE_OTHER)


def actor(who: Who) -> str:
    """Who the audit log says did it."""
    return f"staff:{who.email}"[:ACTOR_LENGTH]
