"""Rate limits per sender and per endpoint; oversize bodies refused before any work."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.core.config import Settings
from bot.core.ratelimit import BodySizeLimit, RateLimiter
from bot.db.models import Message
from bot.main import create_app
from tests.app.channels.test_webchat import say, start


@pytest.fixture
def strict_client(settings: Settings) -> Iterator[TestClient]:
    tight = settings.model_copy(
        update={
            "rate_limit_per_sender": "3/minute",
            "rate_limit_per_endpoint": "5/minute",
            "max_body_bytes": 4096,
        }
    )
    with TestClient(create_app(tight), client=("127.0.0.1", 50000)) as test_client:
        yield test_client


def message_count(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return session.scalar(select(func.count()).select_from(Message)) or 0


def test_limiter_counts_each_sender_and_the_endpoint() -> None:
    limiter = RateLimiter(storage_uri="memory://", per_sender="2/minute", per_endpoint="3/minute")
    assert limiter.allow(endpoint="e", sender="a")
    assert limiter.allow(endpoint="e", sender="a")
    assert not limiter.allow(endpoint="e", sender="a")  # a's own limit
    assert not limiter.allow(endpoint="e", sender="b")  # the endpoint's limit
    assert limiter.allow(endpoint="other", sender="a")


def test_a_chatty_session_gets_429_and_nothing_is_stored(
    strict_client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    session_id, headers = start(strict_client)
    for number in range(3):
        assert say(strict_client, session_id, headers, f"message {number}").status_code == 200
    stored = message_count(session_factory)
    refused = say(strict_client, session_id, headers, "one too many")
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "30"
    assert "wait" in refused.json()["detail"]
    assert message_count(session_factory) == stored


def test_an_oversize_body_is_413_and_changes_nothing(
    strict_client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    session_id, headers = start(strict_client)
    response = strict_client.post(
        f"/api/webchat/sessions/{session_id}/messages",
        headers={**headers, "Content-Type": "application/json"},
        content=b'{"text": "' + b"a" * 8000 + b'"}',
    )
    assert response.status_code == 413
    assert response.json() == {"detail": "The request is too large."}
    assert message_count(session_factory) == 0


def test_an_oversize_chunked_body_is_413(strict_client: TestClient) -> None:
    session_id, headers = start(strict_client)

    def chunks() -> Iterator[bytes]:
        yield b'{"text": "'
        for _ in range(10):
            yield b"a" * 1000
        yield b'"}'

    response = strict_client.post(
        f"/api/webchat/sessions/{session_id}/messages",
        headers={**headers, "Content-Type": "application/json"},
        content=chunks(),
    )
    assert response.status_code == 413


def test_malformed_json_is_a_clear_422(
    strict_client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    session_id, headers = start(strict_client)
    response = strict_client.post(
        f"/api/webchat/sessions/{session_id}/messages",
        headers={**headers, "Content-Type": "application/json"},
        content=b"{not json",
    )
    assert response.status_code == 422
    assert message_count(session_factory) == 0


def test_a_malformed_request_is_logged_without_its_content(
    strict_client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    session_id, headers = start(strict_client)
    with caplog.at_level("WARNING"):
        response = strict_client.post(
            f"/api/webchat/sessions/{session_id}/messages",
            headers=headers,
            json={"txet": "my passport number is 123456789"},
        )
    assert response.status_code == 422
    [record] = [r for r in caplog.records if "malformed" in r.getMessage()]
    assert "/messages" in record.getMessage()
    assert "123456789" not in caplog.text


def test_a_path_with_its_own_limit_takes_larger_bodies_and_no_other_does() -> None:
    app = FastAPI()

    @app.post("/upload")
    @app.post("/other")
    async def echo(request: Request) -> dict[str, int]:
        return {"size": len(await request.body())}

    app.add_middleware(BodySizeLimit, max_bytes=100, per_path={"/upload": 1000})
    with TestClient(app) as client:
        assert client.post("/upload", content=b"x" * 900).json() == {"size": 900}
        assert client.post("/upload", content=b"x" * 1100).status_code == 413
        assert client.post("/other", content=b"x" * 900).status_code == 413
        assert client.post("/other", content=b"x" * 90).json() == {"size": 90}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_memory_windows_move_and_forget_senders_whose_windows_emptied() -> None:
    from limits import parse

    from bot.core.ratelimit import MemoryWindows

    clock = FakeClock()
    windows = MemoryWindows(clock=clock, sweep_every=8)
    two_a_minute = parse("2/minute")
    assert windows.hit(two_a_minute, "sender", "a")
    clock.now += 30
    assert windows.hit(two_a_minute, "sender", "a")
    assert not windows.hit(two_a_minute, "sender", "a")  # two in the last minute
    clock.now += 30.5  # the first hit has left the window, the second has not
    assert windows.hit(two_a_minute, "sender", "a")
    assert not windows.hit(two_a_minute, "sender", "a")
    assert windows.hit(two_a_minute, "sender", "b")  # every sender has its own window
    assert windows.hit(parse("1/second"), "sender", "a")  # and every limit
    assert len(windows) == 3
    clock.now += 61
    assert windows.hit(two_a_minute, "sender", "c")  # the eighth call: a sweep first
    assert len(windows) == 1  # a and b had emptied windows; c is new


def test_a_refused_hit_does_not_count() -> None:
    from limits import parse

    from bot.core.ratelimit import MemoryWindows

    clock = FakeClock()
    windows = MemoryWindows(clock=clock)
    one_a_second = parse("1/second")
    assert windows.hit(one_a_second, "x")
    for _ in range(10):
        clock.now += 0.09
        assert not windows.hit(one_a_second, "x")
    clock.now += 0.2  # 1.1 s after the only counted hit
    assert windows.hit(one_a_second, "x")


@pytest.mark.parametrize("storage_uri", ["memory://", "memory://?x=1"])
def test_in_memory_limits_do_not_start_threads(storage_uri: str) -> None:
    import threading

    limiter = RateLimiter(storage_uri=storage_uri, per_sender="5/minute", per_endpoint="9/minute")
    before = threading.active_count()
    results = [limiter.allow(endpoint="e", sender="a") for _ in range(7)]
    assert results == [True] * 5 + [False] * 2
    assert threading.active_count() == before
