"""The officers' handoff from Telegram and from WhatsApp, end to end through the fakes.

A citizen writes on Telegram (an update posted to the webhook with its
secret) or on WhatsApp (a Twilio webhook signed with the auth token); the
fake Rasa answers an arrest as the real assistant does (urgent, handoff);
an officer signs in through the console's own forms, finds the
conversation at the top of the queue, takes it over and replies; the real
python-telegram-bot and twilio libraries deliver the officer's words to the
fake Bot API and the fake Twilio API on loopback. Returned to the bot, the
citizen's next message is answered by the assistant on the same channel.
"""

from __future__ import annotations

import itertools
import json
import re
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from twilio.request_validator import RequestValidator

from bot.core.config import Settings
from bot.db.models import Conversation, Direction, Message, Owner, Sender
from bot.handoff.actions import RETURN_GREETING
from bot.main import create_app
from tests.app.console.conftest import Account, csrf, signed_in, urgent_responder
from tests.support.fake_rasa import FakeRasa
from tests.support.fake_telegram import FakeTelegram
from tests.support.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio

PUBLIC = "https://consular.example.gov.uk"
TELEGRAM_SECRET = "console-handoff-telegram-secret_0123"
CHAT = 626262
WHATSAPP_NUMBER = "whatsapp:+447700900001"
SMS_NUMBER = "+447700900002"
CITIZEN_WHATSAPP = "whatsapp:+447700900777"
ARREST = "my son has been arrested in Dubai"
URGENT_REPLY = "Call the 24-hour line on +44 20 7008 5000. An officer will join."
JOINED = "A consular officer, Alice, has joined this conversation and will reply here."
OFFICER_REPLY = "I am Alice from the consular team. Which police station is he held at?"
TIMEOUT = 10.0

ROW = re.compile(r'<tr class="govuk-table__row[^"]*" data-conversation-id="([^"]+)"')
HANDOFF_ID = re.compile(r'name="handoff_id" value="(\d+)"')

_update_ids = itertools.count(910_000)


def assistant(sender: str, text: str) -> list[dict[str, Any]]:
    """The fake Rasa: an arrest is urgent and handed off; anything else is answered."""
    if "arrested" in text.lower():
        return urgent_responder(sender, text)
    return [
        {
            "recipient_id": sender,
            "custom": {"text": f"The assistant answers: {text}", "topic": "arrest-detention"},
        }
    ]


# -- fixtures -----------------------------------------------------------------------------


@pytest.fixture
def channels_app(
    settings: Settings, fake_telegram: FakeTelegram, fake_twilio: FakeTwilio, fake_rasa: FakeRasa
) -> Iterator[TestClient]:
    """The app with Telegram and WhatsApp pointed at the fakes, and a quick outbox."""
    fake_rasa.responder = assistant
    configured = settings.model_copy(
        update={
            "public_base_url": PUBLIC,
            "telegram_bot_token": fake_telegram.token,
            "telegram_webhook_secret": TELEGRAM_SECRET,
            "telegram_api_base_url": fake_telegram.api_base_url,
            "telegram_file_base_url": fake_telegram.file_base_url,
            "twilio_account_sid": ACCOUNT_SID,
            "twilio_auth_token": AUTH_TOKEN,
            "twilio_whatsapp_from": WHATSAPP_NUMBER,
            "twilio_sms_from": SMS_NUMBER,
            "twilio_api_base_url": fake_twilio.url,  # type: ignore[attr-defined]
            "outbox_backoff_seconds": 0.05,
            "outbox_backoff_max_seconds": 0.2,
            "outbox_poll_seconds": 0.05,
            "recovery_poll_seconds": 0.1,
        }
    )
    # An https public address makes the console's cookies Secure: talk https.
    with TestClient(
        create_app(configured), base_url="https://testserver", client=("127.0.0.1", 50000)
    ) as client:
        yield client


# -- helpers ------------------------------------------------------------------------------


def wait_for(check: Callable[[], Any], what: str, timeout: float = TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def telegram_says(client: TestClient, text: str) -> None:
    """A private-chat text update posted to the webhook, as Telegram sends it."""
    update = {
        "update_id": next(_update_ids),
        "message": {
            "message_id": next(_update_ids),
            "date": 1_760_000_000,
            "chat": {"id": CHAT, "type": "private", "first_name": "Citizen"},
            "from": {"id": CHAT, "is_bot": False, "first_name": "Citizen"},
            "text": text,
        },
    }
    response = client.post(
        "/webhooks/telegram",
        content=json.dumps(update).encode(),
        headers={
            "Content-Type": "application/json",
            "X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET,
        },
    )
    assert response.status_code == 200, response.text


def whatsapp_says(client: TestClient, text: str) -> None:
    """An inbound WhatsApp webhook, signed for the public URL as Twilio signs it."""
    sid = "SM" + secrets.token_hex(16)
    params = {
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "ProfileName": "Alex",
        "MessageType": "text",
        "SmsSid": sid,
        "WaId": CITIZEN_WHATSAPP.removeprefix("whatsapp:+"),
        "SmsStatus": "received",
        "Body": text,
        "To": WHATSAPP_NUMBER,
        "NumSegments": "1",
        "MessageSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": CITIZEN_WHATSAPP,
        "ApiVersion": "2010-04-01",
    }
    path = "/webhooks/twilio/whatsapp"
    signature = RequestValidator(AUTH_TOKEN).compute_signature(f"{PUBLIC}{path}", params)
    response = client.post(path, data=params, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200, response.text


def telegram_texts(fake: FakeTelegram) -> list[str]:
    """What the fake Bot API accepted for the citizen's chat, in order."""
    return [str(params["text"]) for params in fake.sent() if params.get("chat_id") == CHAT]


def whatsapp_texts(fake: FakeTwilio) -> list[str]:
    """What the fake Twilio API accepted for the citizen's WhatsApp number, in order."""
    return [str(message.get("Body", "")) for message in fake.sent_to(CITIZEN_WHATSAPP)]


def top_of_the_queue(client: TestClient, channel_label: str) -> str:
    """The first conversation in the queue, after checking what its row shows."""
    page = client.get("/console")
    assert page.status_code == 200
    rows = ROW.findall(page.text)
    assert rows, "the queue is empty"
    first_row = page.text[page.text.index(rows[0]) :].split("</tr>", 1)[0]
    assert "Urgent" in first_row
    assert "Arrest detention" in first_row
    assert "United Arab Emirates (AE)" in first_row
    assert channel_label in first_row
    assert ARREST in first_row
    assert "Waiting" in first_row
    return str(rows[0])


def act(client: TestClient, conversation_id: str, action: str, **fields: str) -> str:
    """Submits one of the conversation page's forms, with the page's CSRF token and handoff."""
    page = client.get(f"/console/conversations/{conversation_id}")
    assert page.status_code == 200
    handoff = HANDOFF_ID.search(page.text)
    assert handoff, "the page offers no action on a handoff"
    response = client.post(
        f"/console/conversations/{conversation_id}/{action}",
        data={"csrf_token": csrf(page.text), "handoff_id": handoff.group(1), **fields},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return str(response.headers["location"])


def owner(factory: sessionmaker[Session], conversation_id: str) -> Owner:
    with factory() as session:
        return session.get_one(Conversation, conversation_id).owner


def inbound(factory: sessionmaker[Session], conversation_id: str) -> list[str]:
    with factory() as session:
        return list(
            session.scalars(
                select(Message.text)
                .where(
                    Message.conversation_id == conversation_id,
                    Message.direction == Direction.INBOUND,
                )
                .order_by(Message.id)
            )
        )


def officer_messages(factory: sessionmaker[Session], conversation_id: str) -> list[Message]:
    with factory() as session:
        return list(
            session.scalars(
                select(Message)
                .where(Message.conversation_id == conversation_id, Message.sender == Sender.OFFICER)
                .order_by(Message.id)
            )
        )


Says = Callable[[TestClient, str], None]
Sent = Callable[[], list[str]]


def handoff_round_trip(
    client: TestClient,
    alice: Account,
    factory: sessionmaker[Session],
    fake_rasa: FakeRasa,
    *,
    says: Says,
    sent: Sent,
    channel_label: str,
) -> str:
    """The whole journey on one channel; returns the conversation id."""
    # The citizen writes; the assistant answers at once and queues it as urgent.
    signed_in(client, alice)
    says(client, ARREST)
    wait_for(lambda: URGENT_REPLY in sent(), "the assistant's urgent reply at the fake API")
    wait_for(
        lambda: any("You are next in the queue" in text for text in sent()),
        "the queue notice at the fake API",
    )

    # The officer finds it at the top of the queue and takes it over.
    conversation_id = top_of_the_queue(client, channel_label)
    assert owner(factory, conversation_id) == Owner.QUEUE
    act(client, conversation_id, "take-over")
    assert owner(factory, conversation_id) == Owner.OFFICER
    wait_for(lambda: JOINED in sent(), "the 'has joined' notice at the fake API")

    # While the officer has it, the citizen's words go to the console, not to Rasa.
    rasa_calls = len(fake_rasa.calls)
    says(client, "he is at the police station in Deira")
    wait_for(
        lambda: "he is at the police station in Deira" in inbound(factory, conversation_id),
        "the citizen's message to be stored",
    )
    page = client.get(f"/console/conversations/{conversation_id}").text
    assert "he is at the police station in Deira" in page

    # The officer replies; the channel's API receives exactly those words.
    act(client, conversation_id, "reply", text=OFFICER_REPLY)
    wait_for(lambda: OFFICER_REPLY in sent(), "the officer's reply at the fake API")
    wait_for(
        lambda: officer_messages(factory, conversation_id)[-1].delivery_state.value == "sent",
        "the officer's reply to be marked sent",
    )
    assert 'console-delivery--sent"' in client.get(f"/console/conversations/{conversation_id}").text
    assert len(fake_rasa.calls) == rasa_calls  # the bot stayed silent
    texts = sent()
    assert texts.index(JOINED) < texts.index(OFFICER_REPLY)
    assert not any("police station in Deira" in text for text in texts)  # nothing echoed

    # Back to the assistant: the citizen is told, and the next question is the bot's.
    location = act(client, conversation_id, "return")
    assert location.endswith("/console?done=returned")
    assert owner(factory, conversation_id) == Owner.BOT
    wait_for(lambda: RETURN_GREETING in sent(), "the return greeting at the fake API")
    says(client, "can I visit him")
    wait_for(
        lambda: "The assistant answers: can I visit him" in sent(),
        "the assistant's answer to the next question at the fake API",
    )
    assert [call["message"] for call in fake_rasa.calls][-1] == "can I visit him"
    assert ROW.findall(client.get("/console").text) == []  # nobody is waiting now
    return conversation_id


# -- the tests ----------------------------------------------------------------------------


def test_a_telegram_arrest_is_taken_over_answered_by_an_officer_and_returned_to_the_bot(
    channels_app: TestClient,
    alice: Account,
    session_factory: sessionmaker[Session],
    fake_rasa: FakeRasa,
    fake_telegram: FakeTelegram,
) -> None:
    conversation_id = handoff_round_trip(
        channels_app,
        alice,
        session_factory,
        fake_rasa,
        says=telegram_says,
        sent=lambda: telegram_texts(fake_telegram),
        channel_label="Telegram",
    )
    texts = telegram_texts(fake_telegram)
    assert texts[0] == URGENT_REPLY
    assert texts[-3:] == [OFFICER_REPLY, RETURN_GREETING, "The assistant answers: can I visit him"]
    with session_factory() as session:
        conversation = session.get_one(Conversation, conversation_id)
        assert (conversation.channel, conversation.external_id) == ("telegram", str(CHAT))


def test_a_whatsapp_arrest_is_taken_over_answered_by_an_officer_and_returned_to_the_bot(
    channels_app: TestClient,
    alice: Account,
    session_factory: sessionmaker[Session],
    fake_rasa: FakeRasa,
    fake_twilio: FakeTwilio,
) -> None:
    conversation_id = handoff_round_trip(
        channels_app,
        alice,
        session_factory,
        fake_rasa,
        says=whatsapp_says,
        sent=lambda: whatsapp_texts(fake_twilio),
        channel_label="WhatsApp",
    )
    messages = fake_twilio.sent_to(CITIZEN_WHATSAPP)
    assert all(message["From"] == WHATSAPP_NUMBER for message in messages)
    reply = next(message for message in messages if message.get("Body") == OFFICER_REPLY)
    assert reply["StatusCallback"] == f"{PUBLIC}/webhooks/twilio/status"
    texts = whatsapp_texts(fake_twilio)
    assert texts[0] == URGENT_REPLY
    assert texts[-3:] == [OFFICER_REPLY, RETURN_GREETING, "The assistant answers: can I visit him"]
    with session_factory() as session:
        conversation = session.get_one(Conversation, conversation_id)
        assert conversation.channel == "whatsapp"
