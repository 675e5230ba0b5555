"""/healthz reports the database, Rasa and the action server."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from tests.support.fake_rasa import FakeActionServer, FakeRasa


def test_healthz_is_ok_when_everything_answers(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    components = response.json()["components"]
    assert set(components) == {"database", "rasa", "action_server"}
    assert all(component["ok"] for component in components.values())


def test_healthz_is_503_when_rasa_is_down(client: TestClient, fake_rasa: FakeRasa) -> None:
    fake_rasa.down = True
    response = client.get("/healthz")
    assert response.status_code == 503
    components = response.json()["components"]
    assert components["rasa"]["ok"] is False
    assert components["database"]["ok"] is True and components["action_server"]["ok"] is True


def test_healthz_is_503_when_rasa_rejects_the_token(
    client: TestClient, fake_rasa: FakeRasa
) -> None:
    fake_rasa.token = "rotated"
    assert client.get("/healthz").status_code == 503


def test_healthz_is_503_when_the_action_server_is_down(
    client: TestClient, fake_actions: FakeActionServer
) -> None:
    fake_actions.down = True
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["components"]["action_server"]["ok"] is False


def test_healthz_never_logs_the_rasa_token(
    client: TestClient, fake_rasa: FakeRasa, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        client.get("/healthz")
    assert fake_rasa.token not in caplog.text
