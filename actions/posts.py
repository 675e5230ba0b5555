"""Actions for the contact-embassy topic."""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import consular_api
from actions.replies import EMERGENCY_PHONE, holding_reply, reply

logger = logging.getLogger(__name__)

TOPIC = "contact-embassy"
OTHER_POSTS_LISTED = 4
KIND_NAMES = {
    "embassy": "embassy",
    "high-commission": "high commission",
    "consulate": "consulate",
    "consulate-general": "consulate general",
}


class ActionFindPost(Action):
    """Replies with the contact details of the British posts in a country."""

    def name(self) -> Text:
        return "action_find_post"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        """Looks up the posts for the country slot and sends their details."""
        country = tracker.get_slot("country")
        if not country:
            dispatcher.utter_message(json_message=ask_country_reply())
            return []
        try:
            found = await consular_api.get_posts(country)
        except consular_api.ConsularApiError:
            logger.warning("posts lookup failed for %s", country, exc_info=True)
            dispatcher.utter_message(json_message=holding_reply(topic=TOPIC, country=country))
            return []
        dispatcher.utter_message(
            json_message=reply(format_posts(found), topic=TOPIC, country=found.country)
        )
        return []


class ActionAskCountry(Action):
    """Asks which country the citizen means, tagged with the topic being asked about."""

    def name(self) -> Text:
        return "action_ask_country"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        """Sends the country question."""
        dispatcher.utter_message(json_message=ask_country_reply())
        return []


def ask_country_reply() -> Dict[str, Any]:
    """The question for a missing country; the topic tells the app what it is for."""
    return reply(
        "Which country are you in, or which country do you need the British embassy "
        "or consulate for?",
        topic=TOPIC,
    )


def format_posts(found: consular_api.CountryPosts) -> str:
    """Plain text for the posts of one country; channels add their own markup."""
    if not found.posts:
        return (
            f"I don't have contact details for a British embassy or consulate in "
            f"{found.country_name}. You can call the 24-hour consular line on "
            f"{EMERGENCY_PHONE} from anywhere in the world."
        )
    main, *others = found.posts
    lines = [
        f"{main.name} ({KIND_NAMES.get(main.kind, main.kind)} in {main.city})",
        f"Address: {main.address}",
        f"Phone: {main.phone}",
        f"Email: {main.email}",
        f"Opening hours (local time, {main.timezone}): {main.opening_hours}",
    ]
    if others:
        listed = ", ".join(
            f"{post.city} ({KIND_NAMES.get(post.kind, post.kind)}, {post.phone})"
            for post in others[:OTHER_POSTS_LISTED]
        )
        lines.append(f"Other British posts in {found.country_name}: {listed}.")
    lines.append(
        f"If you need urgent help at any hour, call {main.emergency_phone or EMERGENCY_PHONE}."
    )
    if any(post.is_sample for post in found.posts):
        lines.append("(Sample data for demonstration: check GOV.UK before relying on it.)")
    return "\n".join(lines)
