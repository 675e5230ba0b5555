"""The Rasa client: several Rasa servers, each conversation always on the same one."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bot.conversations.rasa_client import (
    AssistantUnavailable,
    RasaClient,
    rasa_base_urls,
    server_index,
)
from tests.support.fake_rasa import FakeRasa
from tests.support.servers import ServerThread


@pytest.fixture
def two_rasas() -> Iterator[list[FakeRasa]]:
    fakes, servers = [FakeRasa(), FakeRasa()], []
    for fake in fakes:
        server = ServerThread(fake.app()).start()
        fake.url = server.url  # type: ignore[attr-defined]
        servers.append(server)
    yield fakes
    for server in servers:
        server.stop()


def call(urls: str, token: str, body: Any) -> Any:
    async def main() -> Any:
        async with httpx.AsyncClient() as http:
            rasa = RasaClient(http=http, base_url=urls, token=token, timeout=5)
            try:
                return await body(rasa)
            finally:
                await rasa.aclose()

    return asyncio.run(main())


def test_the_setting_lists_one_or_more_base_urls() -> None:
    assert rasa_base_urls("http://127.0.0.1:5005/") == ["http://127.0.0.1:5005"]
    assert rasa_base_urls(" http://a:5005, http://b:5006/ ,") == ["http://a:5005", "http://b:5006"]
    with pytest.raises(ValueError, match="no Rasa URL"):
        rasa_base_urls(" , ")


def test_a_conversation_is_always_sent_to_the_same_server(two_rasas: list[FakeRasa]) -> None:
    urls = ",".join(fake.url for fake in two_rasas)  # type: ignore[attr-defined]
    senders = [f"conversation-{number}" for number in range(20)]

    async def body(rasa: RasaClient) -> None:
        for _ in range(2):
            for sender in senders:
                await rasa.send(sender_id=sender, text="hello")

    call(urls, two_rasas[0].token, body)
    seen = [{call["sender"] for call in fake.calls} for fake in two_rasas]
    # Every conversation went to one server only, twice, and both servers had work.
    assert seen[0].isdisjoint(seen[1]) and seen[0] | seen[1] == set(senders)
    assert all(seen) and sum(len(fake.calls) for fake in two_rasas) == 2 * len(senders)
    for number, senders_seen in enumerate(seen):
        assert all(server_index(sender, 2) == number for sender in senders_seen)


def test_the_choice_does_not_depend_on_the_process() -> None:
    # A fixed digest, not Python's per-process string hash: the same server
    # after any restart of the app (these values were computed once).
    assert [server_index(f"c{number}", 2) for number in range(8)] == [1, 0, 1, 0, 0, 0, 0, 1]
    assert [server_index(f"c{number}", 3) for number in range(8)] == [2, 2, 0, 2, 0, 1, 2, 2]
    assert server_index("6c0f2a4e-0000-4000-8000-000000000000", 1) == 0


def test_the_status_needs_every_server_up(two_rasas: list[FakeRasa]) -> None:
    urls = ",".join(fake.url for fake in two_rasas)  # type: ignore[attr-defined]

    async def status(rasa: RasaClient) -> dict[str, Any]:
        return await rasa.status(wait_seconds=2)

    assert call(urls, two_rasas[0].token, status)["model_id"] == "fake"
    two_rasas[1].down = True
    with pytest.raises(httpx.HTTPStatusError):
        call(urls, two_rasas[0].token, status)


def test_a_server_that_is_down_fails_only_its_own_conversations(
    two_rasas: list[FakeRasa],
) -> None:
    urls = ",".join(fake.url for fake in two_rasas)  # type: ignore[attr-defined]
    two_rasas[1].down = True
    on_first = next(f"c{number}" for number in range(50) if server_index(f"c{number}", 2) == 0)
    on_second = next(f"c{number}" for number in range(50) if server_index(f"c{number}", 2) == 1)

    async def body(rasa: RasaClient) -> str:
        replies = await rasa.send(sender_id=on_first, text="hello")
        with pytest.raises(AssistantUnavailable):
            await rasa.send(sender_id=on_second, text="hello")
        return replies[0].text

    assert call(urls, two_rasas[0].token, body) == "You said: hello"


def call_with(urls: str, token: str, body: Any, **kwargs: Any) -> Any:
    async def main() -> Any:
        async with httpx.AsyncClient() as http:
            rasa = RasaClient(http=http, base_url=urls, token=token, **kwargs)
            try:
                return await body(rasa)
            finally:
                await rasa.aclose()

    return asyncio.run(main())


def send_together(senders: list[str]) -> Any:
    """Sends one message from each sender at once, started in this order."""

    async def body(rasa: RasaClient) -> list[str]:
        replies = await asyncio.gather(
            *(rasa.send(sender_id=sender, text=sender) for sender in senders)
        )
        return [reply[0].text for reply in replies]

    return body


@pytest.mark.parametrize("concurrency", [1, 2, 3])
def test_each_server_gets_at_most_its_share_of_turns_in_the_order_they_came(
    two_rasas: list[FakeRasa], concurrency: int
) -> None:
    fake = two_rasas[0]
    fake.delay = 0.2
    senders = [f"conversation-{number}" for number in range(6)]
    answers = call_with(
        fake.url,  # type: ignore[attr-defined]
        fake.token,
        send_together(senders),
        timeout=5,
        concurrency=concurrency,
    )
    assert answers == [f"You said: {sender}" for sender in senders]
    assert fake.most_in_flight == concurrency
    # Those that waited went on first come, first served (turns let through
    # together may reach the server in either order).
    arrived = [call["sender"] for call in fake.calls]
    assert sorted(arrived) == sorted(senders)
    assert all(
        abs(arrived.index(sender) - sent) < concurrency for sent, sender in enumerate(senders)
    )


def test_without_a_limit_every_turn_goes_at_once(two_rasas: list[FakeRasa]) -> None:
    fake = two_rasas[0]
    fake.delay = 0.2
    senders = [f"conversation-{number}" for number in range(6)]
    call_with(
        fake.url,  # type: ignore[attr-defined]
        fake.token,
        send_together(senders),
        timeout=5,
        concurrency=0,
    )
    assert fake.most_in_flight == len(senders)


def test_the_limit_is_per_server(two_rasas: list[FakeRasa]) -> None:
    urls = ",".join(fake.url for fake in two_rasas)  # type: ignore[attr-defined]
    for fake in two_rasas:
        fake.delay = 0.1
    senders = [f"c{number}" for number in range(8)]
    call_with(urls, two_rasas[0].token, send_together(senders), timeout=5, concurrency=1)
    # Each server had its own one turn at a time, both working at once.
    assert [fake.most_in_flight for fake in two_rasas] == [1, 1]
    assert all(fake.calls for fake in two_rasas)


def test_the_wait_for_a_turn_counts_towards_the_timeout(two_rasas: list[FakeRasa]) -> None:
    fake = two_rasas[0]
    fake.delay = 0.5

    async def body(rasa: RasaClient) -> list[Any]:
        return await asyncio.gather(
            rasa.send(sender_id="first", text="hello"),
            rasa.send(sender_id="second", text="hello"),
            return_exceptions=True,
        )

    first, second = call_with(
        fake.url,  # type: ignore[attr-defined]
        fake.token,
        body,
        timeout=0.8,
        concurrency=1,
    )
    # The first is answered in time; the second would be answered after
    # about 1 s, waiting included, and gives up at 0.8 s.
    assert first[0].text == "You said: hello"
    assert isinstance(second, AssistantUnavailable)
