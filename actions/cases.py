"""The case-status identity check: reference, surname and date of birth, then status.

Every kind of mismatch gets the same words. The facts are cleared from the
slots as soon as the check is done, so they do not linger in the tracker.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import consular_api
from actions.parsing import parse_birth_date, parse_reference
from actions.replies import holding_reply, reply

logger = logging.getLogger(__name__)

TOPIC = "case-status"
FACT_SLOTS = ("case_reference", "case_surname", "case_birth_date")
MAX_SURNAME_LENGTH = 120
NOT_VERIFIED = (
    "I couldn't confirm those details. Please check the case reference, surname and date "
    "of birth, and try again. You can also ask to talk to an officer."
)
QUESTIONS = {
    "case_reference": "What is your case reference? It looks like CON-2026-004512.",
    "case_surname": "What is the surname of the person the case is about?",
    "case_birth_date": "What is their date of birth? For example, 14/03/1985.",
}


class _AskFact(Action):
    """Asks for one fact of the identity check."""

    slot = ""

    def name(self) -> Text:
        return f"action_ask_{self.slot}"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        """Sends the question for this slot."""
        dispatcher.utter_message(json_message=reply(QUESTIONS[self.slot], topic=TOPIC))
        return []


class ActionAskCaseReference(_AskFact):
    """Asks for the case reference."""

    slot = "case_reference"


class ActionAskCaseSurname(_AskFact):
    """Asks for the surname."""

    slot = "case_surname"


class ActionAskCaseBirthDate(_AskFact):
    """Asks for the date of birth."""

    slot = "case_birth_date"


class ValidateCaseStatusForm(FormValidationAction):
    """Checks the form of each fact (never whether it matches a case)."""

    def name(self) -> Text:
        return "validate_case_status_form"

    def validate_case_reference(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        """Normalises "con 2026 004512" to CON-2026-004512."""
        reference = parse_reference(str(value or ""))
        if reference is None:
            dispatcher.utter_message(
                json_message=reply(
                    "That doesn't look like a case reference. It starts with CON, "
                    "for example CON-2026-004512.",
                    topic=TOPIC,
                )
            )
        return {"case_reference": reference}

    def validate_case_surname(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        """Any name with a letter in it, of a sensible length."""
        surname = str(value or "").strip()
        if not any(char.isalpha() for char in surname) or len(surname) > MAX_SURNAME_LENGTH:
            dispatcher.utter_message(
                json_message=reply("Please type the surname only.", topic=TOPIC)
            )
            return {"case_surname": None}
        return {"case_surname": surname}

    def validate_case_birth_date(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        """Any common date format, day first; stored as YYYY-MM-DD."""
        born = parse_birth_date(str(value or ""))
        if born is None:
            dispatcher.utter_message(
                json_message=reply(
                    "I couldn't read that date. Please give the full date of birth, "
                    "for example 14/03/1985 or 14 March 1985.",
                    topic=TOPIC,
                )
            )
            return {"case_birth_date": None}
        return {"case_birth_date": born.isoformat()}


class ActionCheckCase(Action):
    """Runs the identity check and discloses only status and next step."""

    def name(self) -> Text:
        return "action_check_case"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        """Asks the app to verify the facts, then forgets them."""
        forget: List[EventType] = [SlotSet(slot, None) for slot in FACT_SLOTS]
        facts: Dict[str, Optional[str]] = {slot: tracker.get_slot(slot) for slot in FACT_SLOTS}
        if not all(facts.values()):
            dispatcher.utter_message(json_message=reply(QUESTIONS["case_reference"], topic=TOPIC))
            return forget
        try:
            result = await consular_api.verify_case(
                reference=str(facts["case_reference"]),
                surname=str(facts["case_surname"]),
                date_of_birth=str(facts["case_birth_date"]),
                conversation_id=tracker.sender_id,
            )
        except consular_api.ConsularApiError:
            logger.warning("case lookup failed", exc_info=True)
            dispatcher.utter_message(json_message=holding_reply(topic=TOPIC))
            return forget
        dispatcher.utter_message(json_message=case_reply(result))
        return forget


def case_reply(result: consular_api.CaseLookup) -> Dict[str, Any]:
    """The words for each outcome; every mismatch reads the same."""
    if result.outcome == "verified":
        return reply(
            f"Case {result.reference}: {result.status}.\nNext step: {result.next_step}",
            topic=TOPIC,
        )
    if result.outcome == "locked":
        payload = reply(
            f"For your security, case lookups for that reference are paused for "
            f"{result.locked_minutes or 15} minutes. I've asked a consular officer to help "
            "you, and they will reply here.",
            topic=TOPIC,
            handoff=True,
        )
        payload["handoff_reason"] = "identity-check-failed"
        return payload
    return reply(NOT_VERIFIED, topic=TOPIC)
