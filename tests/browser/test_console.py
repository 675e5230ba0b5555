"""The duty officers' console in a real browser (Debian's Chromium) against the real app.

A citizen uses the web chat widget in one browser context and a duty
officer the console in another, on the same app served by uvicorn on
loopback. The fake Rasa answers an arrest as the real assistant does: the
24-hour line, urgent, handed off to an officer (topic arrest-detention,
country AE). The officer's account is made in the test database with a
known password and TOTP secret, and signs in through the console's own
two-step form with a code computed by pyotp.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import time
from typing import Any

import httpx
import pyotp
import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page, Request, expect
from sqlalchemy import select

from bot.console import officers
from bot.db.models import Handoff, Officer, Presence
from bot.db.session import session_scope
from bot.handoff.actions import RETURN_GREETING
from tests.app.console.conftest import queue_conversation
from tests.browser.conftest import EXPECT_TIMEOUT_MS
from tests.browser.stack import Stack
from tests.browser.test_webchat import FOCUS_INDICATOR_JS, axe_violations
from tests.browser.widget import Chat, inbound_texts, wait_until

OFFICER_EMAIL = "alice.officer@example.gov.uk"
OFFICER_NAME = "Alice Officer"
OFFICER_PASSWORD = "correct horse battery staple"
OFFICER_SECRET = pyotp.random_base32()

ARREST = "my son has been arrested in Dubai"
URGENT_REPLY = (
    "If you need urgent help, call the 24-hour consular line on +44 20 7008 5000. "
    "We are passing your conversation to a consular officer now."
)
QUEUE_NOTICE = "You are next in the queue"
JOINED = "A consular officer, Alice, has joined this conversation and will reply here."
OFFICER_REPLY = "I am Alice from the consular team. Which police station is he held at?"
NEXT_QUESTION = "can I visit him in prison"
BOT_ANSWER = "Family members can usually visit after the police allow it."
HOSTILE = '<img src=x onerror="window.__consoleXss = (window.__consoleXss || 0) + 1">'


def assistant(sender: str, text: str) -> list[dict[str, Any]]:
    """The fake Rasa, scripted like the real assistant for these conversations."""
    if "arrested" in text.lower():
        # What the arrest-detention action sends: the 24-hour line first,
        # marked urgent, and a handoff to a duty officer.
        return [
            {
                "recipient_id": sender,
                "custom": {
                    "text": URGENT_REPLY,
                    "topic": "arrest-detention",
                    "country": "AE",
                    "urgent": True,
                    "handoff": True,
                },
            }
        ]
    if text == NEXT_QUESTION:
        return [
            {
                "recipient_id": sender,
                "custom": {"text": BOT_ANSWER, "topic": "arrest-detention", "country": "AE"},
            }
        ]
    return [{"recipient_id": sender, "text": f"You said: {text}"}]


@dataclass(frozen=True)
class OfficerLogin:
    """The officer's account: what they type to sign in."""

    email: str
    password: str
    secret: str

    def code(self) -> str:
        return pyotp.TOTP(self.secret).now()


@pytest.fixture
def officer(stack: Stack) -> OfficerLogin:
    """A duty officer on shift all week, in the app's own database."""
    with session_scope(stack.session_factory) as session:
        officers.add_officer(
            session=session,
            email=OFFICER_EMAIL,
            name=OFFICER_NAME,
            role="officer",
            timezone="Europe/London",
            password=OFFICER_PASSWORD,
            totp_secret=OFFICER_SECRET,
        )
        officers.add_shifts(
            session=session, email=OFFICER_EMAIL, days=list(range(7)), starts=time(0), ends=time(0)
        )
    return OfficerLogin(OFFICER_EMAIL, OFFICER_PASSWORD, OFFICER_SECRET)


def _officer_context(browser: Browser, **options: Any) -> Iterator[BrowserContext]:
    context = browser.new_context(**options)
    context.set_default_timeout(EXPECT_TIMEOUT_MS)
    yield context
    context.close()


@pytest.fixture
def console_page(browser: Browser) -> Iterator[Page]:
    """The officer's browser: its own context, so nothing is shared with the citizen's."""
    for context in _officer_context(browser):
        yield context.new_page()


@pytest.fixture
def unprotected_console_page(browser: Browser) -> Iterator[Page]:
    """The officer's browser with the Content-Security-Policy off: only escaping protects."""
    for context in _officer_context(browser, bypass_csp=True):
        yield context.new_page()


# -- helpers ------------------------------------------------------------------------------


def sign_in(page: Page, stack: Stack, officer: OfficerLogin) -> None:
    """Both steps with the mouse and the form fields, as most officers do."""
    page.goto(stack.url + "/console")
    expect(page).to_have_url(stack.url + "/console/sign-in")
    page.get_by_label("Email address").fill(officer.email)
    page.get_by_label("Password").fill(officer.password)
    page.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(stack.url + "/console/sign-in/code")
    page.get_by_label("Enter your security code").fill(officer.code())
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(stack.url + "/console")
    expect(page.locator(".console-bar__who")).to_contain_text(f"Signed in as {OFFICER_NAME}")


def queue_rows(page: Page) -> Locator:
    return page.locator("#queue-table tbody tr")


def transcript(page: Page) -> Locator:
    return page.locator("#transcript > li")


def presence(stack: Stack) -> Presence:
    with session_scope(stack.session_factory) as session:
        officer = session.scalars(select(Officer).where(Officer.email == OFFICER_EMAIL)).one()
        return officer.presence


def handoff_owner(stack: Stack, conversation_id: str) -> int | None:
    with session_scope(stack.session_factory) as session:
        handoff = session.scalars(
            select(Handoff).where(Handoff.conversation_id == conversation_id)
        ).one()
        return handoff.officer_id


# -- the handoff, end to end ---------------------------------------------------------------


def test_an_officer_takes_over_a_web_chat_arrest_replies_and_returns_it_to_the_bot(
    stack: Stack, page: Page, console_page: Page, officer: OfficerLogin
) -> None:
    stack.rasa.responder = assistant
    # Someone with a routine question has been waiting longer.
    queue_conversation(
        stack.session_factory, minutes_ago=20, summary="renewing my passport in France"
    )

    # The officer signs in with password and code, and sees the queue.
    console = console_page
    sign_in(console, stack, officer)
    assert presence(stack) == Presence.ONLINE
    # Its live connection is up once it has refreshed the queue.
    expect(console.locator("#live-status")).to_have_text("Queue updated: 1 open conversation.")
    expect(queue_rows(console)).to_have_count(1)

    # The citizen writes in web chat; the assistant answers at once and queues it.
    chat = Chat(page, stack).open()
    chat.say(ARREST, URGENT_REPLY)
    expect(page.locator(".webchat__message--urgent")).to_have_count(1)
    expect(chat.message(QUEUE_NOTICE)).to_have_count(1)
    session_id = chat.session()["session_id"]

    # The console hears of it live: urgent banner, and the queue refreshed with
    # the arrest at the top (urgent before the longer-waiting routine one).
    expect(console.locator("#urgent-alert")).to_be_visible()
    expect(console.locator("#urgent-alert-text")).to_have_text(
        "A new urgent conversation has joined the queue."
    )
    expect(queue_rows(console)).to_have_count(2)
    top = queue_rows(console).first
    expect(top).to_have_attribute("data-conversation-id", session_id)
    expect(top).to_contain_text("Urgent")
    expect(top).to_contain_text("Arrest detention")
    expect(top).to_contain_text("United Arab Emirates (AE)")
    expect(top).to_contain_text("Web chat")
    expect(top).to_contain_text(ARREST)
    expect(top).to_contain_text("Waiting")
    expect(queue_rows(console).nth(1)).to_contain_text("renewing my passport in France")

    # The officer opens it: the whole transcript, the assistant's turns included.
    top.get_by_role("link").click()
    expect(console).to_have_url(f"{stack.url}/console/conversations/{session_id}")
    expect(console.get_by_role("heading", level=1)).to_have_text(
        "Arrest detention, United Arab Emirates (AE)"
    )
    expect(transcript(console).filter(has_text=ARREST)).to_have_count(1)
    expect(transcript(console).filter(has_text=URGENT_REPLY)).to_have_count(1)

    # Takes it over; the citizen is told an officer has joined.
    console.get_by_role("button", name="Take over this conversation").click()
    expect(console.locator(".govuk-notification-banner--success")).to_contain_text(
        "You have taken over this conversation."
    )
    assert handoff_owner(stack, session_id) is not None
    expect(chat.message(JOINED)).to_have_count(1)

    # While the officer has it, the citizen's words come to the console live,
    # and the assistant stays silent.
    rasa_calls = len(stack.rasa.calls)
    expect(console.locator("#live-status")).to_have_text("Live updates are on.")
    chat.send("he is held at the police station in Deira")
    expect(transcript(console).filter(has_text="police station in Deira")).to_have_count(1)
    wait_until(
        lambda: "he is held at the police station in Deira" in inbound_texts(stack, session_id),
        what="the citizen's message stored",
    )
    assert len(stack.rasa.calls) == rasa_calls

    # The officer replies; the citizen's page shows it, as from an officer.
    console.get_by_label("Message", exact=True).fill(OFFICER_REPLY)
    console.get_by_role("button", name="Send reply").click()
    expect(console.locator(".govuk-notification-banner--success")).to_contain_text(
        "Your reply has been sent to the citizen."
    )
    officer_message = page.locator(".webchat__message--officer").filter(has_text=OFFICER_REPLY)
    expect(officer_message).to_have_count(1)
    expect(officer_message).to_contain_text("Consular officer")
    expect(transcript(console).filter(has_text=OFFICER_REPLY)).to_have_count(1)
    assert len(stack.rasa.calls) == rasa_calls

    # Back to the assistant: the officer returns to the queue, which is shorter;
    # the citizen is greeted back.
    console.get_by_role("button", name="Return to the assistant").click()
    expect(console).to_have_url(f"{stack.url}/console?done=returned")
    expect(queue_rows(console)).to_have_count(1)
    expect(queue_rows(console).first).not_to_have_attribute("data-conversation-id", session_id)
    expect(chat.message(RETURN_GREETING)).to_have_count(1)

    # The citizen's next question is answered by the assistant (the fake Rasa).
    chat.say(NEXT_QUESTION, BOT_ANSWER)
    assert stack.rasa.calls[-1]["message"] == NEXT_QUESTION
    assert stack.rasa.calls[-1]["sender"] == session_id
    expect(page.locator(".webchat__message--officer")).to_have_count(1)


# -- signing in with the keyboard alone ----------------------------------------------------


def tab_to(page: Page, element_id: str, limit: int = 20) -> list[dict[str, Any]]:
    """Presses Tab until the element has focus; every stop must show where the focus is."""
    stops = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        focus = page.evaluate(FOCUS_INDICATOR_JS)
        stops.append(focus)
        assert focus and focus["visible"], f"no visible focus on {focus}"
        if focus["id"] == element_id:
            return stops
    raise AssertionError(f"Tab never reached #{element_id}: {stops}")


def test_an_officer_signs_in_with_the_keyboard_alone(
    stack: Stack, console_page: Page, officer: OfficerLogin
) -> None:
    page = console_page
    page.goto(stack.url + "/console/sign-in")

    stops = tab_to(page, "email")
    assert stops[0]["text"] == "Skip to main content"
    page.keyboard.type(officer.email)
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type(officer.password)
    page.keyboard.press("Enter")

    expect(page).to_have_url(stack.url + "/console/sign-in/code")
    tab_to(page, "code")
    page.keyboard.type(officer.code())
    page.keyboard.press("Enter")

    expect(page).to_have_url(stack.url + "/console")
    expect(page.get_by_role("heading", name="Queue", level=1)).to_be_visible()
    expect(page.locator(".console-bar__who")).to_contain_text(f"Signed in as {OFFICER_NAME}")
    assert presence(stack) == Presence.ONLINE

    # And out again, still by keyboard: Tab to "Sign out" and press Enter.
    stops = []
    for _ in range(20):
        page.keyboard.press("Tab")
        focus = page.evaluate(FOCUS_INDICATOR_JS)
        stops.append(focus)
        assert focus and focus["visible"], f"no visible focus on {focus}"
        if focus["text"] == "Sign out":
            break
    else:
        raise AssertionError(f"Tab never reached Sign out: {stops}")
    page.keyboard.press("Enter")
    expect(page).to_have_url(stack.url + "/console/sign-in?signed_out=1")
    expect(page.get_by_text("You have signed out.")).to_be_visible()
    assert presence(stack) == Presence.OFFLINE


# -- accessibility ---------------------------------------------------------------------------


def serious(violations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [v for v in violations if v["impact"] in ("serious", "critical")]


# Known, not ours to fix here: GOV.UK's link blue (#1d70b8) on the urgent row's
# pink (#fce9e8, bot/static/console/console.css) is 4.42:1, under WCAG's 4.5:1.
URGENT_ROW_LINK = [".console-queue__urgent > td:nth-child(2) > .govuk-link"]


def except_urgent_row_links(violations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        v
        for v in violations
        if not (v["id"] == "color-contrast" and all(n == URGENT_ROW_LINK for n in v["nodes"]))
    ]


def queue_of_three(stack: Stack) -> str:
    """An urgent web chat and routine WhatsApp and Telegram conversations; the urgent id."""
    urgent_id, _ = queue_conversation(stack.session_factory, urgent=True, summary=ARREST)
    queue_conversation(
        stack.session_factory,
        channel="whatsapp",
        external_id="+447700900123",
        minutes_ago=12,
        summary="renewing my passport in France",
    )
    queue_conversation(
        stack.session_factory,
        channel="telegram",
        external_id="424242",
        minutes_ago=3,
        summary="do I need a visa",
    )
    return urgent_id


def test_the_sign_in_queue_and_conversation_pages_pass_axe(
    stack: Stack, console_page: Page, officer: OfficerLogin
) -> None:
    page = console_page
    page.goto(stack.url + "/console/sign-in")
    violations = axe_violations(page)
    assert serious(violations) == [], violations
    assert [v for v in violations if v["wcag"]] == [], violations

    urgent_id = queue_of_three(stack)
    sign_in(page, stack, officer)
    expect(queue_rows(page)).to_have_count(3)
    expect(page.locator("#live-status")).to_contain_text("Queue updated: 3 open conversations.")
    violations = except_urgent_row_links(axe_violations(page))
    assert serious(violations) == [], violations
    assert [v for v in violations if v["wcag"]] == [], violations

    # The conversation page, with the officer's forms on show after taking it over.
    page.goto(f"{stack.url}/console/conversations/{urgent_id}")
    page.get_by_role("button", name="Take over this conversation").click()
    expect(page.get_by_role("button", name="Send reply")).to_be_visible()
    violations = axe_violations(page)
    assert serious(violations) == [], violations
    assert [v for v in violations if v["wcag"]] == [], violations


def test_links_in_urgent_queue_rows_have_enough_contrast(
    stack: Stack, console_page: Page, officer: OfficerLogin
) -> None:
    queue_of_three(stack)
    sign_in(console_page, stack, officer)
    expect(queue_rows(console_page)).to_have_count(3)
    assert serious(axe_violations(console_page)) == []


# -- hostile citizen text ---------------------------------------------------------------------


def test_the_console_shows_a_citizens_html_as_text_and_runs_nothing(
    stack: Stack, page: Page, unprotected_console_page: Page, officer: OfficerLogin
) -> None:
    console = unprotected_console_page
    fetched: list[str] = []
    console.on("request", lambda request: _note_image(request, fetched))
    # The Content-Security-Policy is off in this browser: injected script would run.
    console.goto(stack.url + "/console/sign-in")
    console.add_script_tag(content="window.__cspIsOff = true")
    assert console.evaluate("() => window.__cspIsOff") is True

    # One hostile line already waiting in the queue (server-rendered) ...
    stack.rasa.responder = lambda sender, text: [
        {
            "recipient_id": sender,
            "custom": {
                "text": URGENT_REPLY,
                "topic": "arrest-detention",
                "country": "AE",
                "urgent": True,
                "handoff": True,
            },
        }
    ]
    chat = Chat(page, stack).open()
    chat.say(HOSTILE, URGENT_REPLY)
    session_id = chat.session()["session_id"]

    sign_in(console, stack, officer)
    top = queue_rows(console).first
    expect(top).to_contain_text(HOSTILE)  # shown as the words the citizen typed
    expect(console.locator("#live-status")).to_have_text("Queue updated: 1 open conversation.")
    # ... and one arriving while the queue is open (another citizen, through the
    # web chat API): the live refresh inserts the server-rendered rows.
    with httpx.Client(base_url=stack.url) as other:
        session = other.post("/api/webchat/sessions").json()
        sent = other.post(
            f"/api/webchat/sessions/{session['session_id']}/messages",
            json={"text": f"{HOSTILE} second"},
            headers={"Authorization": f"Bearer {session['token']}"},
        )
        assert sent.status_code == 200
    expect(queue_rows(console)).to_have_count(2)
    expect(queue_rows(console).nth(1)).to_contain_text(f"{HOSTILE} second")

    # The conversation page (server-rendered), then a live message appended to it.
    console.goto(f"{stack.url}/console/conversations/{session_id}")
    expect(transcript(console).filter(has_text=HOSTILE)).to_have_count(1)
    expect(console.locator("#live-status")).to_have_text("Live updates are on.")
    chat.send(HOSTILE + " again")
    expect(transcript(console).filter(has_text=HOSTILE + " again")).to_have_count(1)
    expect(console.locator("#live-status")).to_have_text("New message from citizen.")

    assert console.locator("main img, main script").count() == 0
    handlers = console.locator("main *").evaluate_all(
        "els => els.flatMap(el => el.getAttributeNames().filter(n => n.startsWith('on')))"
    )
    assert handlers == []
    console.goto(stack.url + "/console")
    expect(queue_rows(console)).to_have_count(2)
    assert console.locator("main img").count() == 0
    assert console.evaluate("() => window.__consoleXss") is None
    assert fetched == []


def _note_image(request: Request, fetched: list[str]) -> None:
    # src=x would load <page URL>/x if an <img> were ever made from the text.
    if request.url.rstrip("/").endswith("/x"):
        fetched.append(request.url)
