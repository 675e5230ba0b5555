"""'Was this helpful?' on WhatsApp and SMS: a quick-reply template, or numbered options."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.channels.twilio_sending import tapped_payload
from bot.db.models import GuidanceFeedback
from bot.guidance import feedback
from tests.app.channels import test_twilio
from tests.app.channels.test_twilio import (
    CITIZEN_SMS,
    CITIZEN_WHATSAPP,
    ClientFactory,
    post_signed,
    sms_params,
    wait_until,
    whatsapp_params,
)
from tests.app.conversations.test_feedback import ANSWER, guidance_responder, publish
from tests.support.fake_rasa import FakeRasa
from tests.support.fake_twilio import FakeTwilio

FEEDBACK_SID = "HX" + "f" * 32

# The Twilio tests' fixtures: settings with Twilio on (pointed at the fake), and
# a client factory for changed settings.
settings = test_twilio.settings
app_with = test_twilio.app_with


def answers(factory: sessionmaker[Session]) -> list[tuple[str, bool]]:
    with factory() as session:
        return [
            (row.channel, row.helpful)
            for row in session.scalars(select(GuidanceFeedback).order_by(GuidanceFeedback.id))
        ]


@pytest.mark.parametrize(
    ("path", "params", "citizen", "channel"),
    [
        ("/webhooks/twilio/whatsapp", whatsapp_params, CITIZEN_WHATSAPP, "whatsapp"),
        ("/webhooks/twilio/sms", sms_params, CITIZEN_SMS, "sms"),
    ],
)
def test_without_a_template_the_question_has_numbered_options_and_a_number_answers(
    client: TestClient,
    fake_rasa: FakeRasa,
    fake_twilio: FakeTwilio,
    session_factory: sessionmaker[Session],
    path: str,
    params: Callable[..., dict[str, str]],
    citizen: str,
    channel: str,
) -> None:
    _, revision_id = publish(session_factory)
    fake_rasa.responder = guidance_responder(revision_id)
    post_signed(client, path, params("lost passport in madrid"))

    answer, question = wait_until(
        lambda: len(fake_twilio.sent_to(citizen)) == 2 and fake_twilio.sent_to(citizen)
    )
    assert answer["Body"].startswith(ANSWER)
    assert question["Body"] == "Was this helpful?\n\nReply 1 for Yes\nReply 2 for No"

    post_signed(client, path, params("2"))

    thanks = wait_until(
        lambda: len(fake_twilio.sent_to(citizen)) == 3 and fake_twilio.sent_to(citizen)[2]
    )
    assert "in other words" in thanks["Body"]
    assert answers(session_factory) == [(channel, False)]
    assert [call["message"] for call in fake_rasa.calls] == ["lost passport in madrid"]


def test_with_a_template_whatsapp_shows_quick_replies_and_a_tap_is_recorded(
    app_with: ClientFactory,
    fake_rasa: FakeRasa,
    fake_twilio: FakeTwilio,
    session_factory: sessionmaker[Session],
) -> None:
    _, revision_id = publish(session_factory)
    fake_rasa.responder = guidance_responder(revision_id)
    path = "/webhooks/twilio/whatsapp"
    with app_with(twilio_feedback_content_sid=FEEDBACK_SID) as client:
        post_signed(client, path, whatsapp_params("lost passport in madrid"))
        answer, question = wait_until(
            lambda: (
                len(fake_twilio.sent_to(CITIZEN_WHATSAPP)) == 2
                and fake_twilio.sent_to(CITIZEN_WHATSAPP)
            )
        )
        assert answer["Body"].startswith(ANSWER) and "ContentSid" not in answer
        assert question["ContentSid"] == FEEDBACK_SID and "Body" not in question

        # The template's own button id and title come back with the tap.
        tap = whatsapp_params("Yes", ButtonPayload="helpful-yes", ButtonText="Yes")
        post_signed(client, path, tap)

        wait_until(lambda: len(fake_twilio.sent_to(CITIZEN_WHATSAPP)) == 3)
    assert answers(session_factory) == [("whatsapp", True)]
    assert len(fake_rasa.calls) == 1


def test_the_template_is_for_whatsapp_only(
    app_with: ClientFactory,
    fake_rasa: FakeRasa,
    fake_twilio: FakeTwilio,
    session_factory: sessionmaker[Session],
) -> None:
    _, revision_id = publish(session_factory)
    fake_rasa.responder = guidance_responder(revision_id)
    with app_with(twilio_feedback_content_sid=FEEDBACK_SID) as client:
        post_signed(client, "/webhooks/twilio/sms", sms_params("lost passport"))
        sent = wait_until(
            lambda: len(fake_twilio.sent_to(CITIZEN_SMS)) == 2 and fake_twilio.sent_to(CITIZEN_SMS)
        )
    assert sent[1]["Body"] == "Was this helpful?\n\nReply 1 for Yes\nReply 2 for No"


def test_a_tap_naming_no_offered_button_is_just_words(
    client: TestClient,
    fake_rasa: FakeRasa,
    fake_twilio: FakeTwilio,
    session_factory: sessionmaker[Session],
) -> None:
    _, revision_id = publish(session_factory)
    fake_rasa.responder = guidance_responder(revision_id)
    path = "/webhooks/twilio/whatsapp"
    post_signed(client, path, whatsapp_params("lost passport in madrid"))
    wait_until(lambda: len(fake_twilio.sent_to(CITIZEN_WHATSAPP)) == 2)

    forged = feedback.feedback_payload(revision_id + 1, True)
    post_signed(client, path, whatsapp_params("Maybe", ButtonPayload=forged, ButtonText="Maybe"))

    wait_until(lambda: len(fake_rasa.calls) == 2)
    assert fake_rasa.calls[-1]["message"] == "Maybe"
    assert answers(session_factory) == []


def test_tapped_payload_matches_the_id_first_then_the_title() -> None:
    offered = [
        {"title": "Yes", "payload": feedback.feedback_payload(9, True)},
        {"title": "No", "payload": feedback.feedback_payload(9, False)},
        {"title": "Yes", "payload": feedback.feedback_payload(3, True)},  # an older question
    ]
    assert tapped_payload(feedback.feedback_payload(3, True), "Yes", offered) == (
        feedback.feedback_payload(3, True)
    )
    assert tapped_payload("helpful-no", " no ", offered) == feedback.feedback_payload(9, False)
    assert tapped_payload("helpful-maybe", "Maybe", offered) is None
    assert tapped_payload("", "", offered) is None
