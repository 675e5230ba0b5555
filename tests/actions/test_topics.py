"""action_answer_topic and friends: urgent handling, posts, travel advice, guidance."""

from __future__ import annotations

import asyncio
from typing import Any, Dict, List, Optional

import pytest
from rasa_sdk import Action
from rasa_sdk.executor import CollectingDispatcher

from actions.topics import (
    URGENT_TOPICS,
    ActionAnswerTopic,
    ActionAskCountry,
    ActionDeclineOfficer,
    ActionHandOff,
    ActionNotUnderstood,
)
from tests.actions.conftest import TOKEN, FakeInternalApi, tracker, user_event

CONSULAR_LINE = "+44 20 7008 5000"


def run(action: Action, **kwargs: Any) -> tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, tracker(**kwargs), {}))
    return dispatcher.messages, events


def answer(topic: Optional[str], country: Optional[str] = None) -> List[Dict[str, Any]]:
    messages, _ = run(ActionAnswerTopic(), slots={"topic": topic, "country": country})
    return [message["custom"] for message in messages]


def test_contact_embassy_lists_the_posts(internal_api: FakeInternalApi) -> None:
    [reply] = answer("contact-embassy", "ES")
    assert (reply["topic"], reply["country"]) == ("contact-embassy", "ES")
    assert "British Embassy Madrid" in reply["text"] and "+34 917 146 300" in reply["text"]
    assert "Malaga" in reply["text"] and "Sample data" in reply["text"]
    assert internal_api.requests[0]["token"] == TOKEN


def test_country_without_posts_gives_the_24_hour_line(internal_api: FakeInternalApi) -> None:
    [reply] = answer("contact-embassy", "PE")
    assert reply["country"] == "PE"
    assert "Peru" in reply["text"] and CONSULAR_LINE in reply["text"]


def test_guidance_answer_shows_review_date_and_source(internal_api: FakeInternalApi) -> None:
    [reply] = answer("lost-stolen-passport", "ES")
    assert (reply["topic"], reply["country"]) == ("lost-stolen-passport", "ES")
    assert "Report it to the police" in reply["text"]
    assert "Last reviewed 1 October 2026" in reply["text"]
    assert "https://www.gov.uk/emergency-travel-document" in reply["text"]
    assert "[police](https://example.org/police)" in reply["markdown"]
    assert reply["urgent"] is False and reply["handoff"] is False
    assert internal_api.requests[0]["query"] == {"topic": "lost-stolen-passport", "country": "ES"}


def test_guidance_answer_names_its_revision_and_review_by_date(
    internal_api: FakeInternalApi,
) -> None:
    [reply] = answer("lost-stolen-passport", "ES")
    assert (reply["revision_id"], reply["review_by"]) == (7, "2027-03-03")


def test_guidance_from_an_older_app_has_no_revision(internal_api: FakeInternalApi) -> None:
    internal_api.guidance_missing = ("revision_id", "article_id", "review_by")
    [reply] = answer("lost-stolen-passport", "ES")
    assert reply["revision_id"] is None and reply["review_by"] is None
    assert "Report it to the police" in reply["text"]


def test_travel_advice_leads_with_the_warning(internal_api: FakeInternalApi) -> None:
    [reply] = answer("travel-advice", "TH")
    text = reply["text"]
    assert reply["country"] == "TH"
    assert "advises against all but essential travel to parts of Thailand" in text
    assert "Pattani" in text and "Updated 14 September 2026" in text


def test_travel_advice_without_a_summary_falls_back_to_guidance(
    internal_api: FakeInternalApi,
) -> None:
    [reply] = answer("travel-advice", "ES")
    assert reply["topic"] == "travel-advice" and "Last reviewed" in reply["text"]


@pytest.mark.parametrize("topic", sorted(URGENT_TOPICS))
def test_urgent_first_reply_gives_the_line_and_queues(
    internal_api: FakeInternalApi, topic: str
) -> None:
    messages, events = run(ActionAnswerTopic(), slots={"topic": topic, "country": None})
    first, second = (message["custom"] for message in messages)
    assert CONSULAR_LINE in first["text"] and "duty officer" in first["text"]
    assert first["urgent"] is True and first["handoff"] is True and first["topic"] == topic
    assert second["urgent"] is True and second["handoff"] is False
    assert {"event": "active_loop", "name": None} in [
        {"event": e["event"], "name": e.get("name")} for e in events
    ]


def test_wellbeing_crisis_gives_a_crisis_helpline(internal_api: FakeInternalApi) -> None:
    first, _ = answer("wellbeing-crisis")
    assert "Samaritans" in first["text"]


def test_urgent_reply_survives_an_api_outage(internal_api: FakeInternalApi) -> None:
    internal_api.status = 500
    [first] = answer("arrest-detention", "AE")
    assert first["urgent"] is True and first["handoff"] is True
    assert CONSULAR_LINE in first["text"]


@pytest.mark.parametrize("status", [500, 401])
def test_api_failure_gives_a_holding_reply_and_queues(
    internal_api: FakeInternalApi, status: int
) -> None:
    internal_api.status = status
    [reply] = answer("lost-stolen-passport", "ES")
    assert reply["handoff"] is True and CONSULAR_LINE in reply["text"]
    assert (reply["topic"], reply["country"]) == ("lost-stolen-passport", "ES")


def test_missing_article_gives_a_holding_reply(internal_api: FakeInternalApi) -> None:
    internal_api.guidance_published = False
    [reply] = answer("emergency-money")
    assert reply["handoff"] is True


def test_unreachable_api_gives_a_holding_reply(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONSULAR_API_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("CONSULAR_API_TIMEOUT", "2")
    [reply] = answer("contact-embassy", "ES")
    assert reply["handoff"] is True


def test_asking_for_a_person_queues(internal_api: FakeInternalApi) -> None:
    [reply] = answer("human-agent")
    assert reply["handoff"] is True and reply["topic"] == "human-agent"


def test_no_topic_asks_how_to_help() -> None:
    messages, _ = run(ActionAnswerTopic(), slots={"country": "FR"})
    assert messages[0]["response"] == "utter_ask_how_to_help"


def test_ask_country_carries_the_topic() -> None:
    messages, _ = run(ActionAskCountry(), slots={"topic": "entry-requirements"})
    [reply] = [message["custom"] for message in messages]
    assert reply["topic"] == "entry-requirements" and reply["country"] is None
    assert "Which country" in reply["text"]


def test_one_miss_says_what_we_can_do(internal_api: FakeInternalApi) -> None:
    messages, _ = run(ActionNotUnderstood(), intent="nlu_fallback")
    [reply] = [message["custom"] for message in messages]
    assert reply["topic"] == "out-of-scope" and reply["buttons"] == []


@pytest.mark.parametrize(
    ("intent", "reason"),
    [("out_of_scope", "out_of_scope"), ("nlu_fallback", "misunderstood")],
)
def test_a_miss_says_why_it_was_not_answered(
    internal_api: FakeInternalApi, intent: str, reason: str
) -> None:
    messages, _ = run(ActionNotUnderstood(), intent=intent)
    assert messages[0]["custom"]["unanswered"] == reason


def test_a_miss_during_an_outage_is_not_marked_unanswered(
    internal_api: FakeInternalApi,
) -> None:
    # The holding reply queues an officer; there is nothing for the admin to learn.
    internal_api.status = 500
    messages, _ = run(ActionNotUnderstood(), intent="out_of_scope")
    assert "unanswered" not in messages[0]["custom"]
    assert messages[0]["custom"]["handoff"] is True


def test_two_misses_in_a_row_offer_an_officer(internal_api: FakeInternalApi) -> None:
    history = [user_event("greet"), user_event("out_of_scope"), user_event("nlu_fallback")]
    messages, _ = run(ActionNotUnderstood(), intent="nlu_fallback", events=history)
    [reply] = [message["custom"] for message in messages]
    assert [button["payload"] for button in reply["buttons"]] == ["/human_agent", "/deny"]


def slot_events(events: List[Dict[str, Any]]) -> Dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e["event"] == "slot"}


def ends_the_form(events: List[Dict[str, Any]]) -> bool:
    return {"event": "active_loop", "name": None} in [
        {"event": e["event"], "name": e.get("name")} for e in events
    ] and slot_events(events).get("requested_slot", "kept") is None


def test_two_misses_set_the_offer_one_miss_clears_it(internal_api: FakeInternalApi) -> None:
    history = [user_event("out_of_scope"), user_event("nlu_fallback")]
    _, events = run(ActionNotUnderstood(), intent="nlu_fallback", events=history)
    assert slot_events(events) == {"topic": "out-of-scope", "officer_offered": True}
    history = [user_event("greet"), user_event("nlu_fallback")]
    _, events = run(
        ActionNotUnderstood(),
        intent="nlu_fallback",
        events=history,
        slots={"officer_offered": True},
    )
    assert slot_events(events) == {"topic": "out-of-scope", "officer_offered": None}


def test_a_miss_while_a_form_asks_keeps_the_topic(internal_api: FakeInternalApi) -> None:
    messages, events = run(
        ActionNotUnderstood(),
        intent="out_of_scope",
        slots={"topic": "entry-requirements"},
        active_loop="country_form",
    )
    assert messages[0]["custom"]["topic"] == "out-of-scope"
    assert "topic" not in slot_events(events)
    assert not ends_the_form(events)


def test_asking_for_a_person_while_a_form_asks_ends_the_form(
    internal_api: FakeInternalApi,
) -> None:
    messages, events = run(
        ActionAnswerTopic(), slots={"topic": "human-agent"}, active_loop="country_form"
    )
    assert messages[0]["custom"]["handoff"] is True
    assert ends_the_form(events)


def test_an_answer_without_a_form_leaves_the_loop_alone(internal_api: FakeInternalApi) -> None:
    _, events = run(ActionAnswerTopic(), slots={"topic": "human-agent"})
    assert events == []


def test_an_answer_clears_a_pending_offer(internal_api: FakeInternalApi) -> None:
    _, events = run(
        ActionAnswerTopic(), slots={"topic": "emergency-money", "officer_offered": True}
    )
    assert slot_events(events) == {"officer_offered": None}


def test_yes_to_the_offer_hands_over(internal_api: FakeInternalApi) -> None:
    messages, events = run(
        ActionHandOff(), intent="affirm", slots={"officer_offered": True, "country": "ES"}
    )
    [reply] = [message["custom"] for message in messages]
    assert reply["handoff"] is True and reply["topic"] == "human-agent"
    assert slot_events(events) == {"topic": "human-agent", "officer_offered": None}


def test_yes_to_the_offer_while_a_form_asks_ends_it(internal_api: FakeInternalApi) -> None:
    _, events = run(
        ActionHandOff(),
        intent="affirm",
        slots={"officer_offered": True, "topic": "travel-advice"},
        active_loop="country_form",
    )
    assert ends_the_form(events)


def test_yes_to_the_offer_hands_over_even_if_the_api_is_down(
    internal_api: FakeInternalApi,
) -> None:
    internal_api.status = 500
    messages, _ = run(ActionHandOff(), intent="affirm", slots={"officer_offered": True})
    [reply] = [message["custom"] for message in messages]
    assert reply["handoff"] is True and CONSULAR_LINE in reply["text"]


def test_no_to_the_offer_carries_on() -> None:
    messages, events = run(ActionDeclineOfficer(), intent="deny", slots={"officer_offered": True})
    assert messages[0]["response"] == "utter_ask_how_to_help"
    assert slot_events(events) == {"officer_offered": None}
