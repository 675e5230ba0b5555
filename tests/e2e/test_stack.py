"""End to end: the app, Rasa and the action server as real processes on loopback.

Uses the trained model (``make test`` builds it first), a temporary database
and tracker store, and free ports, then talks to the public web chat API as a
citizen would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "models" / "consular.tar.gz"
STARTUP_SECONDS = 180

pytestmark = pytest.mark.e2e


@dataclass
class Stack:
    """The three running processes and where they listen."""

    app_url: str
    env: dict[str, str]
    processes: dict[str, subprocess.Popen[bytes]]
    logs: Path

    def start_rasa(self) -> None:
        port = self.env["RASA_PORT"]
        self.processes["rasa"] = _spawn(
            "rasa",
            [
                str(ROOT / ".venv-rasa/bin/rasa"),
                "run",
                "--enable-api",
                "--auth-token",
                self.env["CONSULAR_RASA_TOKEN"],
                "--interface",
                "127.0.0.1",
                "--port",
                port,
                "--model",
                str(MODEL),
                "--endpoints",
                "endpoints.yml",
                "--credentials",
                "credentials.yml",
            ],
            self.env,
            self.logs,
        )

    def stop(self, name: str) -> None:
        process = self.processes.pop(name)
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def wait_healthy(self, timeout: float = STARTUP_SECONDS) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        body: dict[str, object] = {}
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    pytest.fail(f"{name} exited early; see {self.logs / name}.log")
            try:
                response = httpx.get(f"{self.app_url}/healthz", timeout=5)
                body = response.json()
                if response.status_code == 200:
                    return body
            except httpx.HTTPError:
                pass
            time.sleep(1)
        pytest.fail(f"stack not healthy after {timeout} s: {body}; logs in {self.logs}")


def _spawn(
    name: str, command: list[str], env: dict[str, str], logs: Path
) -> subprocess.Popen[bytes]:
    log = (logs / f"{name}.log").open("ab")
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if not MODEL.exists():
        pytest.fail(f"{MODEL} is missing: run 'make test' (it trains the model first)")
    work = tmp_path_factory.mktemp("stack")
    app_port, rasa_port, actions_port = free_port(), free_port(), free_port()
    database_url = f"sqlite:///{work / 'consular.db'}"
    env = {
        **os.environ,
        "APP_PORT": str(app_port),
        "RASA_PORT": str(rasa_port),
        "ACTIONS_PORT": str(actions_port),
        "CONSULAR_DATABASE_URL": database_url,
        "CONSULAR_RASA_URL": f"http://127.0.0.1:{rasa_port}",
        "CONSULAR_RASA_TOKEN": "e2e-rasa-token",
        "CONSULAR_ACTION_SERVER_URL": f"http://127.0.0.1:{actions_port}",
        "CONSULAR_INTERNAL_API_TOKEN": "e2e-internal-token",
        "CONSULAR_API_URL": f"http://127.0.0.1:{app_port}",
        "CONSULAR_WEBCHAT_SECRET": "e2e-webchat-secret",
        "ACTION_ENDPOINT_URL": f"http://127.0.0.1:{actions_port}/webhook",
        "RASA_TRACKER_DB": str(work / "tracker.db"),
        "RASA_TELEMETRY_ENABLED": "false",
        "SANIC_HOST": "127.0.0.1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    subprocess.run(
        [str(ROOT / ".venv/bin/bot"), "setup"],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    logs = work
    processes = {
        "app": _spawn(
            "app",
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "bot.main:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(app_port),
            ],
            env,
            logs,
        ),
        "actions": _spawn(
            "actions",
            [
                str(ROOT / ".venv-rasa/bin/rasa"),
                "run",
                "actions",
                "--actions",
                "actions",
                "--port",
                str(actions_port),
            ],
            env,
            logs,
        ),
    }
    running = Stack(f"http://127.0.0.1:{app_port}", env, processes, logs)
    running.start_rasa()
    try:
        running.wait_healthy()
        yield running
    finally:
        for name in list(running.processes):
            running.stop(name)


def _session(stack: Stack) -> tuple[str, dict[str, str]]:
    response = httpx.post(f"{stack.app_url}/api/webchat/sessions", timeout=10)
    assert response.status_code == 201
    body = response.json()
    return body["session_id"], {"Authorization": f"Bearer {body['token']}"}


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
    [reply] = _say(stack, _session(stack), "i lost my passport in barcelona what do i do")
    assert (reply["topic"], reply["country"]) == ("lost-stolen-passport", "ES")
    assert "Last reviewed" in str(reply["text"]) and "https://www.gov.uk/" in str(reply["text"])
    assert reply["html"] and "<a href=" in str(reply["html"])


def test_follow_up_keeps_the_country(stack: Stack) -> None:
    session = _session(stack)
    [first] = _say(stack, session, "is it safe to travel to thailand at the moment")
    assert (first["topic"], first["country"]) == ("travel-advice", "TH")
    [second] = _say(stack, session, "and what vaccines do i need")
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
    [reply] = _say(stack, _session(stack), "i have run out of money and cant get home")
    assert reply["topic"] == "emergency-money"
    assert "Edited live: ring the emergency line." in str(reply["text"])


def test_urgent_message_gets_the_line_and_an_officer_then_the_bot_is_silent(
    stack: Stack,
) -> None:
    session = _session(stack)
    first, guidance = _say(stack, session, "my son has been arrested in Dubai")
    assert (first["topic"], first["country"]) == ("arrest-detention", "AE")
    assert first["urgent"] is True and first["handoff"] is True
    assert "+44 20 7008 5000" in str(first["text"])
    assert guidance["urgent"] is True and "Last reviewed" in str(guidance["text"])
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
        [last] = _say(stack, session, "01/01/1990")
    assert last["handoff"] is True and "paused for 15 minutes" in str(last["text"])


def test_rasa_stopped_gives_503_and_a_holding_reply_then_recovers(stack: Stack) -> None:
    session = _session(stack)
    stack.stop("rasa")
    health = httpx.get(f"{stack.app_url}/healthz", timeout=10)
    assert health.status_code == 503
    assert health.json()["components"]["rasa"]["ok"] is False

    [holding] = _say(stack, session, "how do I contact the British embassy in Spain")
    assert holding["handoff"] is True
    assert "+44 20 7008 5000" in str(holding["text"])

    stack.start_rasa()
    stack.wait_healthy()
    [answer] = _say(stack, session, "how do I contact the British embassy in France")
    assert (answer["topic"], answer["country"]) == ("contact-embassy", "FR")
