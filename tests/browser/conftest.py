"""The real app on a loopback port, driven by Debian's Chromium through Playwright.

Each test gets its own temporary SQLite database, fake Rasa and fake action
server (real HTTP servers on loopback, see ``tests/support/fake_rasa.py``)
and a fresh browser context, so sessionStorage starts empty. One Chromium
process serves the whole run. Playwright never downloads a browser here: it
launches the system Chromium (``make browser`` installs it from Debian).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyotp
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright

from bot.console import officers
from bot.core.config import Settings
from bot.db.migrate import upgrade_to_head
from bot.db.session import session_scope
from tests.browser.stack import AppServer, Stack
from tests.support.fake_rasa import FakeActionServer, FakeRasa
from tests.support.servers import ServerThread

CHROMIUM = Path(os.environ.get("CONSULAR_CHROMIUM", "/usr/bin/chromium"))
# Headless, no GPU, and nothing that talks to the network on its own.
# Playwright adds --headless for headless=True and gives every launch a
# fresh temporary profile (user-data-dir) that it removes afterwards.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Generous for a slow CI machine; every wait ends as soon as its condition holds.
EXPECT_TIMEOUT_MS = 10_000
WEBCHAT_SECRET = "browser-test-webchat-secret"

expect.set_options(timeout=EXPECT_TIMEOUT_MS)


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: run `make browser` (apt-get install chromium) first",
            pytrace=False,
        )
    browser = playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
    )
    yield browser
    browser.close()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    database_url = f"sqlite:///{tmp_path / 'app.db'}"
    upgrade_to_head(database_url)
    rasa = FakeRasa()
    actions = FakeActionServer()
    rasa_server = ServerThread(rasa.app()).start()
    actions_server = ServerThread(actions.app()).start()
    settings = Settings(
        database_url=database_url,
        rasa_url=rasa_server.url,
        rasa_token=rasa.token,
        rasa_timeout_seconds=5,
        action_server_url=actions_server.url,
        webchat_secret=WEBCHAT_SECRET,
        # Held messages are answered soon after the assistant is back.
        recovery_poll_seconds=0.2,
    )
    server = AppServer(settings).start()
    try:
        yield Stack(server=server, rasa=rasa)
    finally:
        server.stop()
        rasa_server.stop()
        actions_server.stop()


def _context(browser: Browser, **options: Any) -> Iterator[BrowserContext]:
    context = browser.new_context(**options)
    context.set_default_timeout(EXPECT_TIMEOUT_MS)
    yield context
    context.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    yield from _context(browser)


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture
def unprotected_page(browser: Browser) -> Iterator[Page]:
    """A page with the Content-Security-Policy switched off, so only the widget's
    own handling of HTML stands between a hostile reply and script execution."""
    for context in _context(browser, bypass_csp=True):
        yield context.new_page()


@dataclass(frozen=True)
class StaffLogin:
    """A member of staff in the app's database: what they type to sign in."""

    email: str
    name: str
    password: str
    secret: str

    def code(self) -> str:
        return pyotp.TOTP(self.secret).now()


STAFF_PASSWORD = "correct horse battery staple"


def add_staff(stack: Stack, *, email: str, name: str, role: str) -> StaffLogin:
    """Adds an account with a known password and TOTP secret (no shifts: not on duty)."""
    secret = pyotp.random_base32()
    with session_scope(stack.session_factory) as session:
        officers.add_officer(
            session=session,
            email=email,
            name=name,
            role=role,
            timezone="Europe/London",
            password=STAFF_PASSWORD,
            totp_secret=secret,
        )
    return StaffLogin(email, name, STAFF_PASSWORD, secret)


def staff_context(browser: Browser) -> Iterator[BrowserContext]:
    """A browser context of its own for one member of staff."""
    yield from _context(browser)
