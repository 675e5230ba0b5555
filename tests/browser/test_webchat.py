"""The web chat widget in a real browser (Debian's Chromium) against the real app.

Rasa is the fake from tests/support (a real HTTP server on loopback); the app,
its database, websocket, rate limiter and recovery loop are the real ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, Request, Route, expect

from bot.db.models import Sender
from tests.browser.stack import Stack
from tests.browser.widget import (
    Chat,
    SocketSwitch,
    conversation_count,
    inbound_texts,
    publish_officer_message,
    silence_socket,
    stored,
    wait_until,
)

# What the focused element shows: an outline or a box-shadow (GOV.UK links use
# a yellow background with a black underline drawn as a box-shadow).
FOCUS_INDICATOR_JS = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const style = getComputedStyle(el);
  const outline = style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2;
  const shadow = style.boxShadow && style.boxShadow !== "none";
  return {
    tag: el.tagName.toLowerCase(),
    id: el.id,
    text: (el.getAttribute("aria-label") || el.textContent || "").trim().slice(0, 40),
    visible: Boolean(outline || shadow),
  };
}"""


def custom(sender: str, text: str, **fields: Any) -> dict[str, Any]:
    """One reply as the project's actions send it (Rasa's 'custom' payload)."""
    return {"recipient_id": sender, "custom": {"text": text, **fields}}


def menu_responder(sender: str, text: str) -> list[dict[str, Any]]:
    if text == "/lost_passport":
        return [custom(sender, "Report a lost passport", topic="lost-passport")]
    if text == "it is urgent":
        return [custom(sender, "Call +44 20 7008 5000 now.", urgent=True, handoff=True)]
    return [
        custom(
            sender,
            "What do you need help with?",
            buttons=[
                {"title": "Lost passport", "payload": "/lost_passport"},
                {"title": "Something else", "payload": "/other"},
            ],
        )
    ]


# ----------------------------------------------------------------- basics


def test_keyboard_only_conversation_with_visible_focus(stack: Stack, page: Page) -> None:
    chat = Chat(page, stack).open()

    # From the top of the page, Tab to the message field; every stop on the
    # way shows where the focus is.
    stops = []
    for _ in range(20):
        page.keyboard.press("Tab")
        focus = page.evaluate(FOCUS_INDICATOR_JS)
        stops.append(focus)
        assert focus and focus["visible"], f"no visible focus on {focus}"
        if focus["tag"] == "textarea":
            break
    else:
        raise AssertionError(f"Tab never reached the message field: {stops}")
    expect(chat.field).to_be_focused()
    assert any(stop["tag"] == "a" for stop in stops)  # skip link, header, phone link

    page.keyboard.type("hello there")
    page.keyboard.press("Enter")

    expect(chat.message("You said: hello there")).to_have_count(1)
    expect(chat.citizen("hello there")).to_have_count(1)
    expect(chat.live_log).to_contain_text("You said: hello there")
    expect(chat.live_log).not_to_contain_text("You: hello there")  # own words are not read out
    expect(chat.field).to_be_focused()
    expect(chat.field).to_have_value("")

    # Shift+Enter is a new line, not a send.
    page.keyboard.type("line one")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("line two")
    expect(chat.field).to_have_value("line one\nline two")
    expect(chat.send_button).to_be_enabled()  # the first message has gone
    page.keyboard.press("Enter")
    expect(chat.message("You said: line one\nline two")).to_have_count(1)

    session = chat.session()
    assert inbound_texts(stack, session["session_id"]) == ["hello there", "line one\nline two"]


def test_form_is_labelled_and_regions_are_announced(stack: Stack, page: Page) -> None:
    chat = Chat(page, stack).open()

    field = chat.field
    assert field.evaluate("el => el.tagName") == "TEXTAREA"
    described = field.get_attribute("aria-describedby") or ""
    assert described and all(page.locator(f"#{id_}").count() == 1 for id_ in described.split())
    expect(page.get_by_role("button", name="Send")).to_have_attribute("type", "submit")
    expect(chat.live_log).to_have_count(1)
    expect(chat.alert_region).to_have_count(1)
    expect(page.get_by_role("region", name="Conversation")).to_be_visible()

    # An empty message gets the GOV.UK error pattern, announced at once.
    field.press("Enter")
    expect(chat.error_summary).to_be_visible()
    expect(chat.error_summary).to_contain_text("There is a problem")
    expect(chat.error_summary.get_by_role("link", name="Enter a message")).to_be_visible()
    expect(page.locator(".govuk-error-message").first).to_contain_text("Enter a message")
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(chat.alert_region).to_contain_text("Error: Enter a message")
    assert conversation_count(stack) == 0  # nothing was sent, not even a session

    chat.say("hi", "You said: hi")
    expect(chat.error_summary).to_be_hidden()
    expect(field).not_to_have_attribute("aria-invalid", "true")


def test_reply_buttons_are_buttons_that_send_their_payload(stack: Stack, page: Page) -> None:
    stack.rasa.responder = menu_responder
    chat = Chat(page, stack).open()
    chat.say("help", "What do you need help with?")

    button = page.get_by_role("button", name="Lost passport")
    assert button.evaluate("el => [el.tagName, el.type]") == ["BUTTON", "button"]
    expect(button).to_be_enabled()  # disabled while the message before is sending
    button.focus()
    page.keyboard.press("Enter")

    expect(chat.message("Report a lost passport")).to_have_count(1)
    # The citizen sees the title they pressed; the assistant got the payload.
    expect(chat.citizen("Lost passport")).to_have_count(1)
    expect(chat.messages.filter(has_text="/lost_passport")).to_have_count(0)
    assert stack.rasa.calls[-1]["message"] == "/lost_passport"
    expect(chat.field).to_be_focused()
    expect(chat.live_log).to_contain_text("Report a lost passport")


def test_reload_restores_the_transcript_without_duplicates(stack: Stack, page: Page) -> None:
    stack.rasa.responder = menu_responder
    chat = Chat(page, stack).open()
    chat.say("help", "What do you need help with?")
    page.get_by_role("button", name="Lost passport").click()
    expect(chat.message("Report a lost passport")).to_have_count(1)
    session = chat.session()
    expect(chat.messages).to_have_count(4)
    before = chat.shown_ids()

    page.reload()

    expect(chat.messages).to_have_count(4)
    expect(chat.message("Report a lost passport")).to_have_count(1)
    after = chat.shown_ids()
    assert after == before
    assert after == [str(m.id) for m in stored(stack, session["session_id"])]
    expect(chat.citizen("Lost passport")).to_have_count(1)  # the title, not "/lost_passport"
    expect(chat.live_log).to_contain_text("restored")
    # Restored history is not read out again as if it were new.
    expect(chat.live_log).not_to_contain_text("Report a lost passport")

    chat.send("thanks")
    expect(chat.message("What do you need help with?")).to_have_count(2)
    expect(chat.messages).to_have_count(6)
    assert chat.session() == session
    assert conversation_count(stack) == 1
    assert len(set(chat.shown_ids())) == 6


# ------------------------------------------------------- live and reconnects


def test_held_message_answered_after_an_outage_arrives_live(stack: Stack, page: Page) -> None:
    stack.rasa.down = True
    chat = Chat(page, stack).open()
    chat.say("my bag was stolen", "the assistant is not available")

    stack.rasa.down = False  # the recovery loop answers the held message

    expect(chat.message("You said: my bag was stolen")).to_have_count(1)
    expect(chat.live_log).to_contain_text("You said: my bag was stolen")
    assert len(set(chat.shown_ids())) == chat.messages.count() == 3


def test_message_sent_while_the_socket_is_down_appears_once_after_reconnect(
    stack: Stack, page: Page
) -> None:
    switch = SocketSwitch(page)
    stack.rasa.down = True
    chat = Chat(page, stack).open()
    chat.say("my bag was stolen", "the assistant is not available")
    session_id = chat.session()["session_id"]
    wait_until(lambda: switch.opened == 1, what="the socket to open")

    # The connection drops (socket and network), then the bot answers the
    # held message while the citizen cannot hear it.
    switch.cut()
    expect(chat.connection).to_contain_text("Reconnecting to the chat")
    expect(chat.live_log).to_contain_text("Chat connection lost")
    page.context.set_offline(True)
    expect(chat.connection).to_contain_text("You are offline")
    stack.rasa.down = False
    answer = wait_until(
        lambda: [m for m in stored(stack, session_id) if m.sender == Sender.BOT],
        what="recovery to answer the held message",
    )[0]
    expect(chat.message("You said: my bag was stolen")).to_have_count(0)

    page.context.set_offline(False)
    switch.restore()

    expect(chat.message("You said: my bag was stolen")).to_have_count(1)
    expect(chat.connection).to_be_hidden()
    expect(chat.live_log).to_contain_text("Chat reconnected")
    assert str(answer.id) in chat.shown_ids()
    wait_until(lambda: switch.opened == 2, what="the socket to reopen")

    # The new socket is live: an officer's message arrives once, unprompted.
    officer_id = publish_officer_message(stack, session_id, "An officer is looking at this now.")
    expect(chat.message("An officer is looking at this now.")).to_have_count(1)
    expect(chat.live_log).to_contain_text("Consular officer: An officer is looking at this now.")
    shown = chat.shown_ids()
    assert shown == [str(m.id) for m in stored(stack, session_id)]
    assert shown[-1] == str(officer_id)


def test_expired_session_starts_a_new_one_and_says_so(stack: Stack, page: Page) -> None:
    chat = Chat(page, stack).open()
    chat.say("hello", "You said: hello")
    old = chat.session()
    page.evaluate(
        "() => { for (const key of Object.keys(sessionStorage)) {"
        "  const s = JSON.parse(sessionStorage.getItem(key));"
        "  s.token = s.token.slice(0, -4) + 'AAAA';"
        "  sessionStorage.setItem(key, JSON.stringify(s)); } }"
    )

    page.reload()

    expect(chat.message("session had expired")).to_have_count(1)
    expect(chat.live_log).to_contain_text("session had expired")
    new = wait_until(
        lambda: (session := chat.stored_session()) and session != old and session,
        what="a new session",
    )
    chat.say("hello again", "You said: hello again")
    assert inbound_texts(stack, new["session_id"]) == ["hello again"]
    expect(chat.message("You said: hello")).to_have_count(1)  # only the new conversation's


# ------------------------------------------------------------------ errors


def test_too_many_messages_shows_a_clear_error(stack: Stack, page: Page) -> None:
    chat = Chat(page, stack).open()
    chat.say("hello", "You said: hello")
    session_id = chat.session()["session_id"]
    limiter = stack.server.app.state.rate_limiter
    wait_until(
        lambda: not limiter.allow(endpoint="webchat-messages", sender=session_id),
        what="the per-sender limit to be used up",
    )

    chat.send("are you there")

    expect(chat.error_summary).to_be_visible()
    expect(chat.error_summary).to_contain_text("too many messages")
    expect(page.locator(".webchat__form .govuk-error-message")).to_contain_text("too many messages")
    expect(chat.alert_region).to_contain_text("too many messages")
    expect(chat.field).to_have_value("are you there")  # kept, to send later
    expect(chat.field).to_have_attribute("aria-invalid", "true")
    expect(chat.citizen("are you there")).to_have_count(0)
    assert inbound_texts(stack, session_id) == ["hello"]

    # The summary's link takes the keyboard back to the field.
    chat.error_summary.get_by_role("link").click()
    expect(chat.field).to_be_focused()


def test_too_many_new_sessions_shows_the_same_clear_error(stack: Stack, page: Page) -> None:
    chat = Chat(page, stack).open()
    limiter = stack.server.app.state.rate_limiter
    wait_until(
        lambda: not limiter.allow(endpoint="webchat-sessions", sender="127.0.0.1"),
        what="the limit on new sessions from this address to be used up",
    )

    chat.send("hello")

    expect(chat.error_summary).to_contain_text("too many messages")
    expect(chat.error_summary).to_contain_text("Wait 30 seconds")
    expect(chat.alert_region).to_contain_text("too many messages")
    expect(chat.field).to_have_value("hello")
    assert chat.stored_session() is None
    assert conversation_count(stack) == 0


def _refuse(status: int, detail: str) -> Any:
    def handler(route: Route) -> None:
        if route.request.method == "POST":
            route.fulfill(status=status, json={"detail": detail})
        else:
            route.continue_()

    return handler


def test_oversize_and_invalid_messages_show_clear_errors(stack: Stack, page: Page) -> None:
    chat = Chat(page, stack).open()
    chat.say("hello", "You said: hello")

    page.route("**/api/webchat/sessions/*/messages", _refuse(413, "The request is too large."))
    chat.send("a long story")
    expect(chat.error_summary).to_contain_text("Your message is too long")
    expect(chat.alert_region).to_contain_text("Your message is too long")
    expect(chat.field).to_have_value("a long story")

    page.unroute("**/api/webchat/sessions/*/messages")
    page.route(
        "**/api/webchat/sessions/*/messages", _refuse(422, "Messages can be at most 10 characters.")
    )
    chat.send("another try")
    expect(chat.error_summary).to_contain_text("Messages can be at most 10 characters")
    expect(chat.alert_region).to_contain_text("Messages can be at most 10 characters")
    expect(chat.citizen("another try")).to_have_count(0)


def test_network_failure_offers_a_retry_that_sends_once(stack: Stack, page: Page) -> None:
    silence_socket(page)  # replies reach the page only in the POST response
    chat = Chat(page, stack).open()
    chat.say("hello", "You said: hello")
    session_id = chat.session()["session_id"]

    # The message reaches the app and is answered, but the response is lost.
    posted: list[dict[str, Any]] = []

    def record(request: Request) -> None:
        if request.method == "POST" and request.url.endswith("/messages"):
            posted.append(request.post_data_json or {})

    page.on("request", record)

    def lose_response(route: Route) -> None:
        if route.request.method != "POST":
            route.continue_()
            return
        route.fetch()
        route.abort("connectionreset")

    page.route("**/api/webchat/sessions/*/messages", lose_response)
    chat.send("is anyone there")
    failed = chat.citizen("is anyone there")
    expect(failed).to_contain_text("Check your connection")
    expect(chat.alert_region).to_contain_text("Check your connection")
    retry = failed.get_by_role("button", name="Try again")
    expect(retry).to_be_visible()

    page.unroute("**/api/webchat/sessions/*/messages")
    retry.focus()
    page.keyboard.press("Enter")

    expect(chat.message("You said: is anyone there")).to_have_count(1)
    expect(chat.citizen("is anyone there")).to_have_count(1)
    expect(retry).to_have_count(0)
    # The retry carried the same client_message_id: one stored message, one turn.
    tries = [body for body in posted if body["text"] == "is anyone there"]
    assert len(tries) == 2
    assert tries[0]["client_message_id"] == tries[1]["client_message_id"]
    assert len(tries[0]["client_message_id"]) == 36  # a random UUID
    assert inbound_texts(stack, session_id) == ["hello", "is anyone there"]
    assert [c["message"] for c in stack.rasa.calls] == ["hello", "is anyone there"]


def test_offline_send_is_reported_and_retried(stack: Stack, page: Page) -> None:
    chat = Chat(page, stack).open()
    chat.say("hello", "You said: hello")

    page.context.set_offline(True)
    expect(chat.connection).to_contain_text("offline")
    chat.send("still there?")
    expect(chat.citizen("still there?")).to_contain_text("Check your connection")

    page.context.set_offline(False)
    chat.citizen("still there?").get_by_role("button", name="Try again").click()
    expect(chat.message("You said: still there?")).to_have_count(1)
    expect(chat.connection).to_be_hidden()
    session_id = chat.session()["session_id"]
    assert inbound_texts(stack, session_id) == ["hello", "still there?"]


# ------------------------------------------------------------ guidance HTML


GUIDANCE_MARKDOWN = """**Report it** to the local police first.

- Get a police report
- Apply for an [emergency travel document](https://www.gov.uk/emergency-travel-document)

<script>window.__webchatXss = "script"</script>
<img src="x" onerror="window.__webchatXss = 'img'">
[call us](javascript:window.__webchatXss='link')
"""


def test_guidance_html_is_shown_and_its_script_never_runs(stack: Stack, page: Page) -> None:
    stack.rasa.responder = lambda sender, text: [
        custom(sender, "Report it to the local police first.", markdown=GUIDANCE_MARKDOWN)
    ]
    chat = Chat(page, stack).open()
    chat.send("i lost my passport")

    reply = chat.messages.filter(has=page.locator(".webchat__rich"))
    expect(reply).to_have_count(1)
    expect(reply.locator("strong")).to_have_text("Report it")
    expect(reply.locator("li")).to_have_count(2)
    link = reply.get_by_role("link", name="emergency travel document")
    expect(link).to_have_attribute("href", "https://www.gov.uk/emergency-travel-document")
    expect(link).to_have_class("govuk-link")
    assert reply.locator("script, img, [onerror]").count() == 0
    assert all(
        not (href or "").startswith("javascript")
        for href in reply.locator("a").evaluate_all("links => links.map(a => a.href)")
    )
    assert page.evaluate("() => window.__webchatXss") is None
    # The live region reads the plain text.
    expect(chat.live_log).to_contain_text("Report it to the local police first.")


HOSTILE_HTML = (
    '<p>Safe <strong>bold</strong> <a href="https://www.gov.uk/" onclick="window.__webchatXss='
    "'onclick'\">GOV.UK</a></p>"
    "<script>window.__webchatXss = 'script'</script>"
    '<img src="/nowhere.png" onerror="window.__webchatXss = \'img\'">'
    "<a href=\"javascript:window.__webchatXss='href'\">click me</a>"
    '<svg><script>window.__webchatXss = "svg"</script></svg>'
    "<svg onload=\"window.__webchatXss = 'svgload'\"></svg>"
    "<iframe srcdoc=\"<script>parent.__webchatXss = 'iframe'</script>\"></iframe>"
    '<p style="color: red" onmouseover="window.__webchatXss = \'hover\'">hover here</p>'
    "<details open ontoggle=\"window.__webchatXss = 'toggle'\">toggle</details>"
    '<form action="https://evil.example/"><button>submit</button></form>'
)


def test_widget_rebuilds_hostile_html_without_running_it(
    stack: Stack, unprotected_page: Page
) -> None:
    page = unprotected_page
    chat = Chat(page, stack).open()
    # The Content-Security-Policy is off in this page: injected script would run.
    page.add_script_tag(content="window.__cspIsOff = true")
    assert page.evaluate("() => window.__cspIsOff") is True

    def hostile_reply(route: Route) -> None:
        if route.request.method != "POST":
            route.continue_()
            return
        response = route.fetch()
        body = response.json()
        body["replies"].append(
            {
                "id": 999_999,
                "text": "Safe bold GOV.UK",
                "html": HOSTILE_HTML,
                "buttons": [],
                "topic": None,
                "country": None,
                "urgent": False,
                "handoff": False,
                "sender": "bot",
            }
        )
        route.fulfill(response=response, json=body)

    page.route("**/api/webchat/sessions/*/messages", hostile_reply)
    chat.send("hello")

    rich = page.locator(".webchat__message--rich .webchat__rich")
    expect(rich).to_have_count(1)
    expect(rich).to_contain_text("Safe bold")
    expect(rich).to_contain_text("click me")
    expect(rich).to_contain_text("hover here")
    expect(rich.get_by_role("link")).to_have_count(1)
    expect(rich.get_by_role("link", name="GOV.UK")).to_have_attribute("href", "https://www.gov.uk/")
    transcript = page.locator(".webchat__messages")
    assert transcript.locator("script, img, svg, iframe, form, details, [style]").count() == 0
    handlers = page.locator("[data-consular-webchat] *").evaluate_all(
        "els => els.flatMap(el => el.getAttributeNames().filter(n => n.startsWith('on')))"
    )
    assert handlers == []
    rich.get_by_text("hover here").hover()
    assert page.evaluate("() => window.__webchatXss") is None


# ------------------------------------------------------------ accessibility


def test_urgent_reply_is_announced_assertively(stack: Stack, page: Page) -> None:
    stack.rasa.responder = menu_responder
    chat = Chat(page, stack).open()
    chat.say("it is urgent", "Call +44 20 7008 5000 now.")

    expect(page.locator(".webchat__message--urgent")).to_have_count(1)
    expect(chat.alert_region).to_contain_text("Urgent message from consular assistant")
    expect(chat.alert_region).to_contain_text("Call +44 20 7008 5000 now.")
    expect(chat.live_log).not_to_contain_text("Call +44 20 7008 5000 now.")


AXE_SCRIPT = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """Runs axe-core (from node_modules, served to the page from its own origin)."""
    if not AXE_SCRIPT.exists():
        pytest.fail(f"{AXE_SCRIPT} is missing: run `npm ci` (make does)", pytrace=False)
    origin = page.url.split("/", 3)[:3]
    axe_url = "/".join(origin) + "/__test__/axe.min.js"
    page.route(
        axe_url, lambda route: route.fulfill(path=AXE_SCRIPT, content_type="text/javascript")
    )
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.add_script_tag(url=axe_url)
    result = page.evaluate(
        "tags => axe.run(document, {"
        "  runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})",
        AXE_TAGS,
    )
    return [
        {
            "id": violation["id"],
            "impact": violation["impact"],
            "help": violation["help"],
            "wcag": [tag for tag in violation["tags"] if tag.startswith("wcag")],
            "nodes": [node["target"] for node in violation["nodes"]][:5],
        }
        for violation in result["violations"]
    ]


def test_demo_page_with_a_conversation_passes_axe(stack: Stack, page: Page) -> None:
    stack.rasa.responder = lambda sender, text: (
        menu_responder(sender, text)
        if text.startswith("/") or text in ("help", "it is urgent")
        else [custom(sender, "Report it to the local police first.", markdown=GUIDANCE_MARKDOWN)]
    )
    chat = Chat(page, stack).open()
    assert axe_violations(page) == []  # the empty page

    chat.say("help", "What do you need help with?")
    chat.say("i lost my passport", "Report it to the local police first.")
    chat.say("it is urgent", "Call +44 20 7008 5000 now.")
    session_id = chat.session()["session_id"]
    publish_officer_message(stack, session_id, "An officer is looking at this now.")
    expect(chat.message("An officer is looking at this now.")).to_have_count(1)
    # The urgent reply can arrive over the socket before its POST returns, and
    # the widget ignores Enter while a message is still being sent.
    expect(chat.send_button).to_be_enabled()
    chat.field.press("Enter")  # an error on show too
    expect(chat.error_summary).to_be_visible()

    violations = axe_violations(page)
    # No serious or critical problem of any kind, and no WCAG failure at all.
    assert [v for v in violations if v["impact"] in ("serious", "critical")] == []
    assert [v for v in violations if v["wcag"]] == []
