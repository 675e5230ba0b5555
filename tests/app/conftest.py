"""Fixtures: a migrated temporary database, fake Rasa and action servers, the app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from bot.core.config import Settings
from bot.db.migrate import upgrade_to_head
from bot.db.session import make_engine, make_session_factory
from bot.main import create_app
from tests.support.fake_rasa import FakeActionServer, FakeRasa
from tests.support.fake_telegram import FakeTelegram
from tests.support.fake_twilio import FakeTwilio
from tests.support.servers import ServerThread

INTERNAL_TOKEN = "test-internal-token"


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    upgrade_to_head(url)
    return url


@pytest.fixture
def session_factory(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(database_url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def fake_rasa() -> Iterator[FakeRasa]:
    fake = FakeRasa()
    server = ServerThread(fake.app()).start()
    fake.url = server.url  # type: ignore[attr-defined]
    yield fake
    server.stop()


@pytest.fixture
def fake_actions() -> Iterator[FakeActionServer]:
    fake = FakeActionServer()
    server = ServerThread(fake.app()).start()
    fake.url = server.url  # type: ignore[attr-defined]
    yield fake
    server.stop()


@pytest.fixture
def fake_telegram() -> Iterator[FakeTelegram]:
    """A fake Telegram Bot API on loopback (point telegram_api_base_url at fake.url)."""
    fake = FakeTelegram()
    server = ServerThread(fake.app()).start()
    fake.url = server.url
    yield fake
    server.stop()


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    """A fake Twilio Messages API on loopback (point twilio_api_base_url at fake.url)."""
    fake = FakeTwilio()
    server = ServerThread(fake.app()).start()
    fake.url = server.url  # type: ignore[attr-defined]
    yield fake
    server.stop()


@pytest.fixture
def settings(database_url: str, fake_rasa: FakeRasa, fake_actions: FakeActionServer) -> Settings:
    return Settings(
        database_url=database_url,
        rasa_url=fake_rasa.url,  # type: ignore[attr-defined]
        rasa_token=fake_rasa.token,
        rasa_timeout_seconds=5,
        action_server_url=fake_actions.url,  # type: ignore[attr-defined]
        internal_api_token=INTERNAL_TOKEN,
        webchat_secret="test-webchat-secret",
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    # The internal API only answers loopback and private networks, so the
    # test client presents itself as a loopback caller.
    with TestClient(create_app(settings), client=("127.0.0.1", 50000)) as test_client:
        yield test_client
