"""The public web chat demo page (``GET /``) and the ``/static`` mount it relies on.

The page is rendered from ``bot/templates`` with Jinja2. Everything it loads
(GOV.UK Frontend CSS and fonts, the widget's JS and CSS) comes from this
origin, so the page is served with a strict Content-Security-Policy: no inline
script or style, no third-party hosts, websockets only back to this host.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

BOT_DIR: Final = Path(__file__).resolve().parent.parent
TEMPLATES_DIR: Final = BOT_DIR / "templates"
STATIC_DIR: Final = BOT_DIR / "static"
STATIC_URL_PATH: Final = "/static"
STATIC_ROUTE_NAME: Final = "static"

SERVICE_NAME: Final = "Consular assistance (sample service)"
DEFAULT_EMERGENCY_PHONE: Final = "+44 20 7008 5000"
DEFAULT_MAX_TEXT_LENGTH: Final = 2000

# A Host header we are willing to echo into the CSP (hostname or IP, optional port).
_SAFE_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))

router = APIRouter(tags=["web pages"])


def content_security_policy(request: Request) -> str:
    """A same-origin-only policy for the page.

    ``connect-src 'self'`` covers fetch(); the websocket's ws:/wss: origin is
    listed explicitly because older browsers do not treat it as 'self'.
    """
    connect = ["'self'"]
    host = request.url.netloc
    if _SAFE_HOST.match(host):
        connect.append(f"{'wss' if request.url.scheme == 'https' else 'ws'}://{host}")
    directives = [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "font-src 'self'",
        f"connect-src {' '.join(connect)}",
        "manifest-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'self'",
    ]
    return "; ".join(directives)


def _security_headers(request: Request) -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(request),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
    }


def static_url(request: Request, path: str) -> str:
    """A root-relative URL for a file under ``bot/static``, cache-busted by its mtime."""
    root_path = str(request.scope.get("root_path", "")).rstrip("/")
    url = f"{root_path}{STATIC_URL_PATH}/{path.lstrip('/')}"
    try:
        version = int((STATIC_DIR / path).stat().st_mtime)
    except OSError:
        return url
    return f"{url}?v={version}"


def _setting(request: Request, name: str, default: str | int) -> str | int:
    """A value from the app's settings object when the full app provides one."""
    settings = getattr(request.app.state, "settings", None)
    value = getattr(settings, name, None)
    if isinstance(value, type(default)) and value:
        return value
    return default


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def webchat_page(request: Request) -> HTMLResponse:
    """The demo page for citizens: a short introduction and the chat widget."""
    phone = str(_setting(request, "emergency_phone", DEFAULT_EMERGENCY_PHONE))
    max_length = int(_setting(request, "webchat_max_text_length", DEFAULT_MAX_TEXT_LENGTH))
    root_path = str(request.scope.get("root_path", "")).rstrip("/")
    context = {
        "service_name": SERVICE_NAME,
        "emergency_phone": phone,
        "emergency_phone_href": "tel:" + re.sub(r"[^0-9+]", "", phone),
        "max_text_length": max_length,
        "api_base": root_path,
        "static_url": lambda path: static_url(request, path),
    }
    return templates.TemplateResponse(
        request,
        "webchat/index.html",
        context,
        headers=_security_headers(request),
    )


def mount_static(app: FastAPI) -> None:
    """Serves ``bot/static`` (the widget and the vendored GOV.UK files) at ``/static``."""
    app.mount(
        STATIC_URL_PATH,
        StaticFiles(directory=STATIC_DIR),
        name=STATIC_ROUTE_NAME,
    )
