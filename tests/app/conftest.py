"""Fixtures: a migrated temporary database, fake Rasa and action servers, the app."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
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


# -- PostgreSQL from Debian's packages (the production profile's database) ----------------
# Debian's postgresql-15 (``initdb``/``pg_ctl``), run as the ``postgres`` user in a
# temporary folder, with the psycopg driver; tests using it are skipped where
# either is missing.


def _pg_bin() -> Path | None:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "pg_ctl").exists():
            return candidate
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Callable[[str], str]]:
    """A throwaway PostgreSQL cluster; yields a function making a database, returning its URL."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("the psycopg driver is not installed")
    binaries = _pg_bin()
    if binaries is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    root = Path(tempfile.mkdtemp(prefix="consular-pg-"))
    data, sockets = root / "data", root / "sockets"
    sockets.mkdir()
    as_postgres: list[str] = []
    if os.geteuid() == 0:
        # PostgreSQL refuses to run as root: run it as Debian's postgres user.
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    port = _free_port()

    def run(*command: str) -> None:
        subprocess.run([*as_postgres, *command], check=True, capture_output=True, timeout=60)

    run(str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8")
    run(
        str(binaries / "pg_ctl"), "-D", str(data), "-w", "-l", str(root / "log"),
        "-o", f"-k {sockets} -p {port} -c listen_addresses='' -c fsync=off", "start",
    )  # fmt: skip
    made: list[str] = []

    def database(name: str) -> str:
        run(str(binaries / "createdb") if (binaries / "createdb").exists() else "createdb",
            "-h", str(sockets), "-p", str(port), "-U", "postgres", name)  # fmt: skip
        made.append(name)
        return f"postgresql+psycopg://postgres@/{name}?host={sockets}&port={port}"

    try:
        yield database
    finally:
        subprocess.run(
            [*as_postgres, str(binaries / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(root, ignore_errors=True)


_MADE = 0


@pytest.fixture(params=["sqlite", "postgresql"])
def any_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    """A migrated database of each kind."""
    global _MADE
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'turns.db'}"
    else:
        _MADE += 1
        make: Callable[[str], str] = request.getfixturevalue("postgres_server")
        url = make(f"turns_{os.getpid()}_{_MADE}")
    upgrade_to_head(url)
    engine = make_engine(url)
    yield make_session_factory(engine)
    engine.dispose()
