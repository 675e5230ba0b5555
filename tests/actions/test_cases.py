"""The case-status form: fact validation, equal answers, lock, slots forgotten."""

from __future__ import annotations

import asyncio
from typing import Any, Dict

import pytest
from rasa_sdk.executor import CollectingDispatcher

from actions.cases import NOT_VERIFIED, ActionCheckCase, ValidateCaseStatusForm
from tests.actions.conftest import SENDER, FakeInternalApi, tracker

FACTS = {
    "case_reference": "CON-2026-004512",
    "case_surname": "Sample",
    "case_birth_date": "1985-03-14",
}


def check(api: FakeInternalApi, outcome: Dict[str, Any]) -> tuple[Dict[str, Any], list]:
    api.case_outcome = outcome
    dispatcher = CollectingDispatcher()
    events = asyncio.run(ActionCheckCase().run(dispatcher, tracker(FACTS), {}))
    [message] = dispatcher.messages
    return message["custom"], events


def test_verified_shows_status_and_next_step_only(internal_api: FakeInternalApi) -> None:
    reply, _ = check(
        internal_api,
        {
            "outcome": "verified",
            "case": {
                "reference": "CON-2026-004512",
                "status": "Document approved",
                "next_step": "Collect it in Malaga",
                "updated_at": "2026-11-01T10:00:00+00:00",
            },
            "locked_minutes": None,
        },
    )
    assert reply["text"] == (
        "Case CON-2026-004512: Document approved.\nNext step: Collect it in Malaga"
    )
    [request] = internal_api.requests
    assert request["json"] == {
        "reference": "CON-2026-004512",
        "surname": "Sample",
        "date_of_birth": "1985-03-14",
        "conversation_id": SENDER,
    }


def test_not_verified_reads_the_same_for_every_mismatch(internal_api: FakeInternalApi) -> None:
    reply, _ = check(internal_api, {"outcome": "not_verified", "case": None})
    assert reply["text"] == NOT_VERIFIED and reply["handoff"] is False


def test_locked_queues_for_an_officer(internal_api: FakeInternalApi) -> None:
    reply, _ = check(internal_api, {"outcome": "locked", "case": None, "locked_minutes": 15})
    assert "15 minutes" in reply["text"]
    assert reply["handoff"] is True and reply["handoff_reason"] == "identity-check-failed"


@pytest.mark.parametrize("outcome", ["verified", "not_verified", "locked"])
def test_facts_are_forgotten_after_the_check(internal_api: FakeInternalApi, outcome: str) -> None:
    case = {"reference": "x", "status": "s", "next_step": "n"} if outcome == "verified" else None
    _, events = check(internal_api, {"outcome": outcome, "case": case, "locked_minutes": 15})
    cleared = {
        event["name"] for event in events if event["event"] == "slot" and event["value"] is None
    }
    assert cleared == set(FACTS)


def validate(slot: str, value: str) -> tuple[Any, list]:
    dispatcher = CollectingDispatcher()
    method = getattr(ValidateCaseStatusForm(), f"validate_{slot}")
    result = method(value, dispatcher, tracker({}), {})
    return result[slot], dispatcher.messages


@pytest.mark.parametrize(
    ("slot", "value", "expected"),
    [
        ("case_reference", "my ref is con 2026 004512", "CON-2026-004512"),
        ("case_reference", "12345", None),
        ("case_surname", "  O'Neill ", "O'Neill"),
        ("case_surname", "1234", None),
        ("case_birth_date", "14 March 1985", "1985-03-14"),
        ("case_birth_date", "14/03/1985", "1985-03-14"),
        ("case_birth_date", "yesterday-ish", None),
    ],
)
def test_form_validation(slot: str, value: str, expected: Any) -> None:
    result, messages = validate(slot, value)
    assert result == expected
    assert bool(messages) == (expected is None)
