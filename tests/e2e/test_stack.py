"""End to end: the app, Rasa and the action server as real processes on loopback.

Uses the trained model (``make test`` builds it first), a temporary database
and tracker store, and free ports, then talks to the public web chat API as a
citizen would.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.support.stack import Stack, StackError, start_stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    try:
        running = start_stack(tmp_path_factory.mktemp("stack"))
    except StackError as exc:
        pytest.fail(str(exc))
    try:
        yield running
    finally:
        running.stop_all()


def _session(stack: Stack) -> tuple[str, dict[str, str]]:
    response = httpx.post(f"{stack.app_url}/api/webchat/sessions", timeout=10)
    assert response.status_code == 201
    body = response.json()
    return body["session_id"], {"Authorization": f"Bearer {body['token']}"}


def _wait_for_reply(
    stack: Stack, session: tuple[str, dict[str, str]], *, after: int, topic: str
) -> dict[str, object]:
    session_id, headers = session
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        response = httpx.get(
            f"{stack.app_url}/api/webchat/sessions/{session_id}/messages",
            params={"after": after},
            headers=headers,
            timeout=10,
        )
        for message in response.json()["messages"]:
            if message["topic"] == topic:
                return dict(message)
        time.sleep(0.5)
    raise AssertionError(f"no {topic} reply after message {after}")


def _say(stack: Stack, session: tuple[str, dict[str, str]], text: str) -> list[dict[str, object]]:
    session_id, headers = session
    response = httpx.post(
        f"{stack.app_url}/api/webchat/sessions/{session_id}/messages",
        json={"text": text},
        headers=headers,
        timeout=30,
    )
    assert response.status_code == 200, response.text
    replies: list[dict[str, object]] = response.json()["replies"]
    return replies


def test_healthz_reports_all_three_components(stack: Stack) -> None:
    body = stack.wait_healthy()
    assert body["status"] == "ok"
    assert set(body["components"]) == {"database", "rasa", "action_server"}  # type: ignore[arg-type]


def test_embassy_in_spain_end_to_end(stack: Stack) -> None:
    replies = _say(stack, _session(stack), "how do I contact the British embassy in Spain")
    [reply] = replies
    assert reply["topic"] == "contact-embassy"
    assert reply["country"] == "ES"
    assert "+34 917 146 300" in str(reply["text"])


def test_asks_for_the_country_then_answers(stack: Stack) -> None:
    session = _session(stack)
    [question] = _say(stack, session, "what is the phone number of the british embassy")
    assert question["topic"] == "contact-embassy" and question["country"] is None
    [answer] = _say(stack, session, "I'm in Portugal")
    assert (answer["topic"], answer["country"]) == ("contact-embassy", "PT")


def test_greeting_goodbye_and_out_of_scope(stack: Stack) -> None:
    session = _session(stack)
    [hello] = _say(stack, session, "hello")
    assert hello["topic"] is None and "consular" in str(hello["text"]).lower()
    [other] = _say(stack, session, "can you tell me a joke")
    assert other["topic"] == "out-of-scope"
    [bye] = _say(stack, session, "bye")
    assert bye["topic"] is None


def test_lost_passport_in_spain_is_answered_from_the_spanish_article(stack: Stack) -> None:
    reply, question = _say(stack, _session(stack), "i lost my passport in barcelona what do i do")
    assert (reply["topic"], reply["country"]) == ("lost-stolen-passport", "ES")
    # Every guidance answer is followed by "Was this helpful?" with two buttons.
    assert question["text"] == "Was this helpful?"
    assert [button["title"] for button in question["buttons"]] == ["Yes", "No"]
    assert "Last reviewed" in str(reply["text"]) and "https://www.gov.uk/" in str(reply["text"])
    assert reply["html"] and "<a href=" in str(reply["html"])


def test_follow_up_keeps_the_country(stack: Stack) -> None:
    session = _session(stack)
    [first] = _say(stack, session, "is it safe to travel to thailand at the moment")
    assert (first["topic"], first["country"]) == ("travel-advice", "TH")
    second, _helpful = _say(stack, session, "and what vaccines do i need")
    assert (second["topic"], second["country"]) == ("travel-health", "TH")


def test_an_edited_article_is_served_on_the_next_message(stack: Stack) -> None:
    engine = create_engine(stack.env["CONSULAR_DATABASE_URL"])
    with engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE guidance_revision SET body = 'Edited live: ring the emergency line.' "
                "WHERE status = 'published' AND article_id = ("
                "SELECT id FROM guidance_article WHERE topic = 'emergency-money' "
                "AND country IS NULL)"
            )
        )
    engine.dispose()
    reply, _helpful = _say(stack, _session(stack), "i have run out of money and cant get home")
    assert reply["topic"] == "emergency-money"
    assert "Edited live: ring the emergency line." in str(reply["text"])


def test_urgent_message_gets_the_line_and_an_officer_then_the_bot_is_silent(
    stack: Stack,
) -> None:
    session = _session(stack)
    first, guidance, queued = _say(stack, session, "my son has been arrested in Dubai")
    assert (first["topic"], first["country"]) == ("arrest-detention", "AE")
    assert first["urgent"] is True and first["handoff"] is True
    assert "+44 20 7008 5000" in str(first["text"])
    assert guidance["urgent"] is True and "Last reviewed" in str(guidance["text"])
    assert queued["sender"] == "system" and "+44 20 7008 5000" in str(queued["text"])
    assert _say(stack, session, "please hurry") == []


def test_case_status_with_the_right_facts(stack: Stack) -> None:
    session = _session(stack)
    [ask] = _say(stack, session, "can i get an update on my case")
    assert ask["topic"] == "case-status" and "reference" in str(ask["text"])
    _say(stack, session, "con 2026 004512")
    _say(stack, session, "Sample")
    [status] = _say(stack, session, "14 March 1985")
    assert "Emergency travel document approved" in str(status["text"])
    assert "Next step:" in str(status["text"])


def test_case_status_wrong_facts_fail_alike_then_lock(stack: Stack) -> None:
    answers = []
    for reference, surname in [
        ("CON-2026-004512", "Wrong"),  # real reference, wrong surname
        ("CON-2026-999999", "Sample"),  # unknown reference
    ]:
        session = _session(stack)
        _say(stack, session, "what's the status of my case")
        _say(stack, session, reference)
        _say(stack, session, surname)
        [answer] = _say(stack, session, "14/03/1985")
        answers.append(answer["text"])
    assert answers[0] == answers[1] and "couldn't confirm" in str(answers[0])

    session = _session(stack)
    for _ in range(2):
        _say(stack, session, "case status please")
        _say(stack, session, "CON-2026-004512")
        _say(stack, session, "Wrong")
        replies = _say(stack, session, "01/01/1990")
    last, queued = replies
    assert queued["sender"] == "system"
    assert last["handoff"] is True and "paused for 15 minutes" in str(last["text"])


def test_rasa_killed_gives_503_and_a_holding_reply_then_recovers(stack: Stack) -> None:
    session = _session(stack)
    [greeting] = _say(stack, session, "hello")
    assert greeting["handoff"] is False
    stack.stop("rasa", kill=True)
    health = httpx.get(f"{stack.app_url}/healthz", timeout=10)
    assert health.status_code == 503
    assert health.json()["components"]["rasa"]["ok"] is False

    [holding] = _say(stack, session, "how do I contact the British embassy in Spain")
    assert holding["handoff"] is True
    assert "+44 20 7008 5000" in str(holding["text"])

    # Nothing lost: once Rasa is back the held question is answered unprompted,
    # and the citizen's websocket or transcript receives it.
    stack.start_rasa()
    stack.wait_healthy()
    held = _wait_for_reply(stack, session, after=int(str(holding["id"])), topic="contact-embassy")
    assert held["country"] == "ES" and held["sender"] == "bot"

    [answer] = _say(stack, session, "how do I contact the British embassy in France")
    assert (answer["topic"], answer["country"]) == ("contact-embassy", "FR")
