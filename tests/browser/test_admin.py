"""The guidance admin in a real browser (Debian's Chromium) against the real app.

An editor changes the lost-passport article and submits it; a reviewer (a
second person) approves it; a citizen asking the web chat about a lost
passport gets the new text at once; the editor rolls back and the old text
is served again. The fake Rasa answers the way the real action server does:
it reads the guidance from the app's internal API on every question, so
what the citizen sees is what the database serves at that moment.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from bot.db.session import session_scope
from bot.seed import seed_sample_guidance
from tests.browser.conftest import StaffLogin, add_staff, staff_context
from tests.browser.stack import Stack
from tests.browser.test_webchat import axe_violations
from tests.browser.widget import Chat

NEW_TEXT = "Report the loss online first, then book an emergency travel document appointment."
OLD_TEXT = "Losing your passport is stressful, but it can usually be sorted quickly."
QUESTION = "I lost my passport in Lisbon"


def guidance_responder(stack: Stack) -> Any:
    """The fake Rasa: a lost passport is answered with the guidance the app serves now."""
    token = stack.server.app.state.settings.internal_api_token

    def answer(sender: str, text: str) -> list[dict[str, Any]]:
        if "passport" not in text.lower():
            return [{"recipient_id": sender, "text": f"You said: {text}"}]
        found = httpx.get(
            f"{stack.url}/api/internal/guidance",
            params={"topic": "lost-stolen-passport", "country": "PT"},
            headers={"X-Internal-Token": token},
            timeout=5,
        ).json()
        return [
            {
                "recipient_id": sender,
                "custom": {
                    "text": found["text"],
                    "markdown": found["markdown"],
                    "topic": "lost-stolen-passport",
                    "country": "PT",
                },
            }
        ]

    return answer


@pytest.fixture
def seeded(stack: Stack) -> Stack:
    """The stack with the sample guidance (the seed's lost-passport article)."""
    with session_scope(stack.session_factory) as session:
        seed_sample_guidance(session=session)
    stack.rasa.responder = guidance_responder(stack)
    return stack


@pytest.fixture
def editor(seeded: Stack) -> StaffLogin:
    return add_staff(seeded, email="eddie@example.gov.uk", name="Eddie Editor", role="editor")


@pytest.fixture
def reviewer(seeded: Stack) -> StaffLogin:
    return add_staff(seeded, email="rita@example.gov.uk", name="Rita Reviewer", role="reviewer")


@pytest.fixture
def editor_page(browser: Browser) -> Iterator[Page]:
    for context in staff_context(browser):
        yield context.new_page()


@pytest.fixture
def reviewer_page(browser: Browser) -> Iterator[Page]:
    for context in staff_context(browser):
        yield context.new_page()


def sign_in(page: Page, stack: Stack, staff: StaffLogin, path: str) -> None:
    """Opens an admin page, signs in on the staff sign-in page and comes back to it."""
    page.goto(stack.url + path)
    expect(page.get_by_role("heading", name="Sign in to the guidance admin")).to_be_visible()
    page.get_by_label("Email address").fill(staff.email)
    page.get_by_label("Password").fill(staff.password)
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Enter your security code").fill(staff.code())
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(stack.url + path)
    expect(page.locator(".admin-bar__who")).to_contain_text(f"Signed in as {staff.name}")


def open_lost_passport(page: Page) -> None:
    page.get_by_label("Search titles, text and example questions").fill("lost passport")
    page.get_by_label("Topic").select_option("lost-stolen-passport")
    page.get_by_role("button", name="Apply filters").click()
    page.get_by_role("link", name="Lost or stolen passport abroad").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Lost or stolen passport abroad")


def citizen_asks(chat: Chat, expected: str) -> None:
    """Asks about a lost passport again and waits for one more answer with ``expected``."""
    before = chat.message(expected).count()
    chat.send(QUESTION)
    expect(chat.message(expected)).to_have_count(before + 1)
    expect(chat.messages.last).to_contain_text(expected)


def test_edit_review_publish_and_roll_back(
    seeded: Stack,
    editor: StaffLogin,
    reviewer: StaffLogin,
    editor_page: Page,
    reviewer_page: Page,
    page: Page,
) -> None:
    stack = seeded
    chat = Chat(page, stack).open()
    citizen_asks(chat, OLD_TEXT)

    # The editor changes the article; the live preview follows the typing.
    sign_in(editor_page, stack, editor, "/admin/articles")
    open_lost_passport(editor_page)
    editor_page.get_by_role("button", name="Start a new draft").click()
    expect(editor_page.get_by_role("heading", name="Edit the draft")).to_be_visible()
    editor_page.wait_for_load_state("load")  # the preview script is deferred
    editor_page.get_by_label("Guidance text").fill(f"**{NEW_TEXT}**")
    expect(editor_page.locator("#preview-web")).to_contain_text(NEW_TEXT)
    expect(editor_page.locator("#preview-web strong")).to_have_text([NEW_TEXT])
    expect(editor_page.locator("#preview-plain")).to_have_text(NEW_TEXT)
    editor_page.get_by_label("What changed and why").fill("Online reporting comes first now")
    editor_page.get_by_role("button", name="Save and submit for review").click()
    expect(editor_page.get_by_role("alert")).to_contain_text("submitted")

    # Not yet approved: the citizen still gets the old text.
    citizen_asks(chat, OLD_TEXT)

    # The reviewer approves it from the queue.
    sign_in(reviewer_page, stack, reviewer, "/admin/review")
    expect(reviewer_page.locator(".admin-diff__added").filter(has_text=NEW_TEXT)).to_have_count(1)
    reviewer_page.get_by_role("button", name="Approve").click()
    expect(reviewer_page.get_by_role("alert")).to_contain_text("approved")

    # The very next question gets the new text.
    citizen_asks(chat, NEW_TEXT)

    # The editor rolls back to the first revision, which is published again at once.
    editor_page.reload()
    editor_page.get_by_role("button", name="Restore revision 1").click()
    expect(editor_page.get_by_role("alert")).to_contain_text("restored")
    citizen_asks(chat, OLD_TEXT)


def test_an_editor_sees_no_approve_button_on_the_review_queue(
    seeded: Stack, editor: StaffLogin, editor_page: Page
) -> None:
    sign_in(editor_page, seeded, editor, "/admin/articles")
    open_lost_passport(editor_page)
    editor_page.get_by_role("button", name="Start a new draft").click()
    editor_page.get_by_label("What changed and why").fill("Checked the fee")
    editor_page.get_by_role("button", name="Save and submit for review").click()
    editor_page.get_by_role("link", name="Review", exact=True).click()
    expect(editor_page.get_by_role("heading", level=1)).to_have_text("Review")
    expect(editor_page.get_by_role("button", name="Approve")).to_have_count(0)


def test_admin_pages_pass_axe(
    seeded: Stack, editor: StaffLogin, reviewer: StaffLogin, editor_page: Page, reviewer_page: Page
) -> None:
    sign_in(editor_page, seeded, editor, "/admin/articles")
    pages = [editor_page.url]
    open_lost_passport(editor_page)
    pages.append(editor_page.url)
    editor_page.get_by_role("button", name="Start a new draft").click()
    pages.append(editor_page.url)
    editor_page.get_by_label("Title").fill("")
    editor_page.get_by_role("button", name="Save draft").click()  # with an error summary
    expect(editor_page.locator(".govuk-error-summary")).to_be_visible()
    problems = {"editor with errors": axe_violations(editor_page)}
    editor_page.get_by_label("Title").fill("Lost or stolen passport abroad")
    editor_page.get_by_label("What changed and why").fill("Checked")
    editor_page.get_by_role("button", name="Save and submit for review").click()
    for url in pages:
        editor_page.goto(url)
        problems[url] = axe_violations(editor_page)
    sign_in(reviewer_page, seeded, reviewer, "/admin/review")
    problems["review"] = axe_violations(reviewer_page)
    serious = {
        where: [v for v in found if v["impact"] in ("serious", "critical") or v["wcag"]]
        for where, found in problems.items()
    }
    assert {where: found for where, found in serious.items() if found} == {}
