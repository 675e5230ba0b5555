"""action_find_post: details from the internal API, a holding reply when it fails."""

from __future__ import annotations

import asyncio
from typing import Any, Dict, List

from rasa_sdk.executor import CollectingDispatcher

from actions.posts import ActionAskCountry, ActionFindPost
from tests.actions.conftest import TOKEN, FakeInternalApi, tracker


def run(slots: Dict[str, Any]) -> List[Dict[str, Any]]:
    dispatcher = CollectingDispatcher()
    events = asyncio.run(ActionFindPost().run(dispatcher, tracker(slots), {}))
    assert events == []
    return dispatcher.messages


def test_name_is_action_find_post() -> None:
    assert ActionFindPost().name() == "action_find_post"


def test_post_details_for_the_country_slot(internal_api: FakeInternalApi) -> None:
    [message] = run({"country": "ES"})
    custom = message["custom"]
    assert custom["topic"] == "contact-embassy"
    assert custom["country"] == "ES"
    assert custom["handoff"] is False and custom["urgent"] is False
    text = custom["text"]
    assert "British Embassy Madrid" in text and "+34 917 146 300" in text
    assert "Malaga" in text and "+34 952 352 300" in text
    assert "Sample data" in text
    assert internal_api.requests == [{"query": {"country": "ES"}, "token": TOKEN}]


def test_country_without_posts_gives_the_24_hour_line(internal_api: FakeInternalApi) -> None:
    [message] = run({"country": "PE"})
    assert message["custom"]["country"] == "PE"
    assert "Peru" in message["custom"]["text"]
    assert "+44 20 7008 5000" in message["custom"]["text"]


def test_api_error_gives_a_holding_reply_and_asks_for_an_officer(
    internal_api: FakeInternalApi,
) -> None:
    internal_api.status = 500
    [message] = run({"country": "ES"})
    custom = message["custom"]
    assert custom["handoff"] is True
    assert "+44 20 7008 5000" in custom["text"]
    assert custom["topic"] == "contact-embassy" and custom["country"] == "ES"


def test_unreachable_api_gives_a_holding_reply(monkeypatch) -> None:
    monkeypatch.setenv("CONSULAR_API_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("CONSULAR_API_TIMEOUT", "2")
    [message] = run({"country": "ES"})
    assert message["custom"]["handoff"] is True


def test_no_country_asks_for_one() -> None:
    [message] = run({})
    assert message["custom"]["topic"] == "contact-embassy"
    assert message["custom"]["country"] is None
    assert "Which country" in message["custom"]["text"]


def test_ask_country_action_asks_with_the_topic() -> None:
    dispatcher = CollectingDispatcher()
    asyncio.run(ActionAskCountry().run(dispatcher, tracker({}), {}))
    [message] = dispatcher.messages
    assert ActionAskCountry().name() == "action_ask_country"
    assert message["custom"]["topic"] == "contact-embassy"
