"""Answers for every catalogue topic: urgent handling, posts, travel advice, guidance.

The topic comes from the ``topic`` slot (filled from the intent by the
domain's slot mappings) and the country from the ``country`` slot, which is
kept for follow-up questions. The words of every answer come from the app's
data; this module only arranges them.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import consular_api
from actions.posts import format_posts
from actions.replies import EMERGENCY_PHONE, ask_country_reply, holding_reply, reply

logger = logging.getLogger(__name__)

URGENT_TOPICS = frozenset(
    "arrest-detention death-abroad hospital-abroad crime-victim sexual-assault missing-person "
    "kidnap forced-marriage child-abduction crisis-disaster wellbeing-crisis".split()
)
COUNTRY_TOPICS = frozenset(
    "lost-stolen-passport arrest-detention death-abroad hospital-abroad crime-victim "
    "sexual-assault missing-person kidnap forced-marriage child-abduction crisis-disaster "
    "document-legalisation register-birth-abroad marriage-abroad travel-advice "
    "entry-requirements travel-health contact-embassy".split()
)
# Where life may be at risk the citizen must call local services before us.
LIFE_AT_RISK = frozenset(
    "hospital-abroad crime-victim sexual-assault kidnap crisis-disaster wellbeing-crisis "
    "missing-person".split()
)
SAMARITANS = "+44 330 094 5717"
OUT_OF_SCOPE = "out-of-scope"
HUMAN_AGENT = "human-agent"
OFFERED = "officer_offered"
ADVISE_AGAINST = {
    "all": "The FCDO advises against all travel to {name}.",
    "all-but-essential": "The FCDO advises against all but essential travel to {name}.",
    "all-parts": "The FCDO advises against all travel to parts of {name}: {areas}.",
    "all-but-essential-parts": (
        "The FCDO advises against all but essential travel to parts of {name}: {areas}."
    ),
}


def readable_date(iso: str) -> str:
    """``2026-10-01`` as "1 October 2026"."""
    day = date.fromisoformat(iso)
    return f"{day.day} {day:%B %Y}"


def urgent_preamble(topic: str) -> str:
    """The first reply to every urgent topic (SERVICE_CATALOGUE.md, "Urgent handling")."""
    lines = ["I'm sorry this is happening. We can help."]
    if topic in LIFE_AT_RISK:
        lines.append(
            "If anyone is in danger or needs medical help now, call the local emergency "
            "services first (112 in Europe and many other countries, 911 in North America)."
        )
    if topic == "wellbeing-crisis":
        lines.append(
            f"You can talk to Samaritans at any time on {SAMARITANS} (from abroad) "
            "or by email at jo@samaritans.org."
        )
    lines.append(
        f"You can call the British consular team at any hour on {EMERGENCY_PHONE}. "
        "I'm passing this conversation to a duty officer now, and they will reply here."
    )
    return "\n".join(lines)


def guidance_reply(found: consular_api.Guidance, *, topic: str, urgent: bool) -> Dict[str, Any]:
    """A guidance answer with when it was last reviewed and where it comes from.

    The revision it came from (and its review-by date) travel with it: the app
    asks "Was this helpful?" about that revision and shows officers the date.
    """
    footer = f"Last reviewed {readable_date(found.last_reviewed)}. Source: {found.source_url}"
    if found.is_sample:
        footer += "\n(Sample content for demonstration.)"
    payload = reply(f"{found.text}\n\n{footer}", topic=topic, country=found.country, urgent=urgent)
    payload["markdown"] = f"{found.markdown}\n\n{footer}"
    payload["revision_id"] = found.revision_id
    payload["review_by"] = found.review_by
    return payload


def travel_advice_reply(advice: consular_api.TravelAdvice) -> Dict[str, Any]:
    """Travel advice for one country: the warning level first, then the summary."""
    lines = [f"Travel advice for {advice.country_name}"]
    warning = ADVISE_AGAINST.get(advice.advise_against)
    if warning:
        lines.append(warning.format(name=advice.country_name, areas=advice.advise_against_areas))
    lines.append(advice.summary)
    lines.append(
        f"Updated {readable_date(advice.last_updated)}. Read the full advice: {advice.url}"
    )
    if advice.is_sample:
        lines.append("(Sample content for demonstration.)")
    return reply("\n".join(lines), topic="travel-advice", country=advice.country)


class ActionAnswerTopic(Action):
    """Answers the current topic for the current country."""

    def name(self) -> Text:
        return "action_answer_topic"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        """Sends the answer for the ``topic`` and ``country`` slots."""
        topic: Optional[str] = tracker.get_slot("topic")
        country: Optional[str] = tracker.get_slot("country")
        if not topic:
            dispatcher.utter_message(response="utter_ask_how_to_help")
            return []
        events: List[EventType] = clear_offer(tracker)
        if topic == HUMAN_AGENT:
            # Handing over to an officer ends whatever form was running.
            events += end_form(tracker)
        if topic in URGENT_TOPICS:
            dispatcher.utter_message(
                json_message=reply(
                    urgent_preamble(topic),
                    topic=topic,
                    country=country,
                    urgent=True,
                    handoff=True,
                )
            )
            # An emergency ends whatever form was running.
            events += [ActiveLoop(None), SlotSet("requested_slot", None)]
        try:
            dispatcher.utter_message(json_message=await self._answer(topic, country))
        except consular_api.ConsularApiError:
            logger.warning("answer for %s/%s failed", topic, country, exc_info=True)
            if topic not in URGENT_TOPICS:
                dispatcher.utter_message(json_message=holding_reply(topic=topic, country=country))
        return events

    async def _answer(self, topic: str, country: Optional[str]) -> Dict[str, Any]:
        urgent = topic in URGENT_TOPICS
        if topic == "contact-embassy" and country:
            found = await consular_api.get_posts(country)
            return reply(format_posts(found), topic=topic, country=found.country)
        if topic == "travel-advice" and country:
            try:
                return travel_advice_reply(await consular_api.get_travel_advice(country))
            except consular_api.NotFound:
                pass  # no summary for this country: the general article follows
        guidance = await consular_api.get_guidance(topic, country)
        payload = guidance_reply(guidance, topic=topic, urgent=urgent)
        if topic == HUMAN_AGENT:
            payload["handoff"] = True
        return payload


def end_form(tracker: Tracker) -> List[EventType]:
    """Events that end the active form, if there is one."""
    if not (tracker.active_loop or {}).get("name"):
        return []
    return [ActiveLoop(None), SlotSet("requested_slot", None)]


def clear_offer(tracker: Tracker) -> List[EventType]:
    """Clears a pending offer of an officer once something else has been answered."""
    return [SlotSet(OFFERED, None)] if tracker.get_slot(OFFERED) else []


class ActionHandOff(Action):
    """A "yes" to the offer of an officer: hands the conversation over, as "human please" does."""

    def name(self) -> Text:
        return "action_hand_off"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        """Sends the human-agent answer (handoff) and ends any form."""
        country: Optional[str] = tracker.get_slot("country")
        try:
            payload = await ActionAnswerTopic()._answer(HUMAN_AGENT, country)
        except consular_api.ConsularApiError:
            logger.warning("human-agent answer failed", exc_info=True)
            payload = holding_reply(topic=HUMAN_AGENT, country=country)
        dispatcher.utter_message(json_message=payload)
        return [SlotSet("topic", HUMAN_AGENT), *clear_offer(tracker), *end_form(tracker)]


class ActionDeclineOfficer(Action):
    """A "no" to the offer of an officer: carry on with the assistant."""

    def name(self) -> Text:
        return "action_decline_officer"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        """Asks what the citizen needs and clears the offer."""
        dispatcher.utter_message(response="utter_ask_how_to_help")
        return clear_offer(tracker)


class ActionAskCountry(Action):
    """Asks which country the citizen means, tagged with the topic being asked about."""

    def name(self) -> Text:
        return "action_ask_country"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        """Sends the country question."""
        topic = tracker.get_slot("topic") or "contact-embassy"
        dispatcher.utter_message(json_message=ask_country_reply(topic))
        return []


class ActionNotUnderstood(Action):
    """Says what the assistant can help with; after two misses in a row, offers an officer."""

    def name(self) -> Text:
        return "action_not_understood"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        """Replies to a message that was not understood or is out of scope."""
        try:
            found = await consular_api.get_guidance(OUT_OF_SCOPE)
            payload = reply(found.text, topic=OUT_OF_SCOPE)
            # Tells the app to keep the citizen's message for the guidance admin.
            payload["unanswered"] = unanswered_reason(tracker)
        except consular_api.ConsularApiError:
            dispatcher.utter_message(json_message=holding_reply(topic=OUT_OF_SCOPE))
            return []
        events: List[EventType] = []
        if misses_in_a_row(tracker) >= 2:
            payload["text"] += "\n\nWould you like to talk to a consular officer instead?"
            payload["buttons"] = [
                {"title": "Yes, talk to an officer", "payload": "/human_agent"},
                {"title": "No, thanks", "payload": "/deny"},
            ]
            # A typed "yes" or "no" answers the offer (rules in data/rules).
            events.append(SlotSet(OFFERED, True))
        else:
            events += clear_offer(tracker)
        dispatcher.utter_message(json_message=payload)
        if (tracker.active_loop or {}).get("name"):
            # The form's question is still open: keep the topic it is for, so
            # that the country, when it comes, answers the right question.
            return events
        return [SlotSet("topic", OUT_OF_SCOPE), *events]


MISSED_INTENTS = frozenset({"nlu_fallback", "out_of_scope"})
# Why a message was not answered, as the app records it (UnansweredReason).
UNANSWERED_OUT_OF_SCOPE = "out_of_scope"
UNANSWERED_MISUNDERSTOOD = "misunderstood"


def unanswered_reason(tracker: Tracker) -> str:
    """Out of scope when the message was understood as something we do not do.

    Anything else that lands in action_not_understood (the NLU fallback, a
    low-confidence prediction) was a misunderstanding.
    """
    intent = (tracker.latest_message or {}).get("intent", {}).get("name")
    return UNANSWERED_OUT_OF_SCOPE if intent == "out_of_scope" else UNANSWERED_MISUNDERSTOOD


def misses_in_a_row(tracker: Tracker) -> int:
    """How many of the latest user messages in a row were not understood."""
    count = 0
    for event in reversed(tracker.events):
        if event.get("event") != "user":
            continue
        intent = (event.get("parse_data") or {}).get("intent", {}).get("name")
        if intent not in MISSED_INTENTS:
            break
        count += 1
    return count
