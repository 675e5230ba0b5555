"""WhatsApp and SMS through Twilio: signed webhooks in, the real library out to a fake API.

Webhooks are signed exactly as Twilio signs them: for the public URL
(``CONSULAR_PUBLIC_BASE_URL`` + path + query, not the host the test client
talks to, as behind a proxy) and every form parameter. Replies go through the
outbox and the real ``twilio`` library to :class:`FakeTwilio` on loopback.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator

from bot.channels.twilio_sending import (
    MAX_BODY_CHARS,
    TwilioApiHttpClient,
    TwilioSender,
    basic_authorization,
    chosen_payload,
    classify,
    render_text,
    split_body,
    template_variable,
)
from bot.core.config import Settings
from bot.db.models import (
    Attachment,
    Conversation,
    DeliveryState,
    Direction,
    Message,
    OutboxItem,
    OutboxState,
    Owner,
    utcnow,
)
from bot.db.session import session_scope
from bot.main import create_app
from bot.outbox.sending import (
    Outgoing,
    PermanentSendError,
    SendError,
    UndeliverableError,
)
from tests.support.fake_rasa import FakeRasa
from tests.support.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio

PUBLIC = "https://consular.example.gov.uk"
WHATSAPP_NUMBER = "whatsapp:+447700900001"
SMS_NUMBER = "+447700900002"
CITIZEN_WHATSAPP = "whatsapp:+447700900123"
CITIZEN_SMS = "+447700900123"
STATUS_CALLBACK = f"{PUBLIC}/webhooks/twilio/status"
TEMPLATE_SID = "HX" + "a" * 32
EMERGENCY_LINE = "+44 20 7008 5000"
TIMEOUT = 10.0

ClientFactory = Callable[..., AbstractContextManager[TestClient]]


# -- fixtures -----------------------------------------------------------------------


@pytest.fixture
def settings(settings: Settings, fake_twilio: FakeTwilio) -> Settings:
    """The app's test settings with Twilio on, pointed at the fake, and a quick outbox."""
    return settings.model_copy(
        update={
            "public_base_url": PUBLIC,
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


@pytest.fixture
def app_with(settings: Settings) -> ClientFactory:
    """A test client for the app with some settings changed."""

    @contextmanager
    def build(**changes: Any) -> Iterator[TestClient]:
        app = create_app(settings.model_copy(update=changes))
        with TestClient(app, client=("127.0.0.1", 50000)) as test_client:
            yield test_client

    return build


# -- helpers ------------------------------------------------------------------------


def new_sid(prefix: str = "SM") -> str:
    return prefix + secrets.token_hex(16)


def whatsapp_params(body: str = "hello", *, sid: str | None = None, **extra: str) -> dict[str, str]:
    """An inbound WhatsApp webhook's form, as Twilio sends it."""
    sid = sid or new_sid()
    sender = extra.pop("From", CITIZEN_WHATSAPP)
    return {
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "ProfileName": "Alex",
        "MessageType": "text",
        "SmsSid": sid,
        "WaId": sender.removeprefix("whatsapp:+"),
        "SmsStatus": "received",
        "Body": body,
        "To": WHATSAPP_NUMBER,
        "NumSegments": "1",
        "ReferralNumMedia": "0",
        "MessageSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": sender,
        "ApiVersion": "2010-04-01",
        **extra,
    }


def sms_params(body: str = "hello", *, sid: str | None = None, **extra: str) -> dict[str, str]:
    """An inbound SMS webhook's form, as Twilio sends it."""
    sid = sid or new_sid()
    return {
        "ToCountry": "GB",
        "ToState": "",
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "ToCity": "",
        "FromZip": "",
        "SmsSid": sid,
        "FromState": "",
        "SmsStatus": "received",
        "FromCity": "",
        "Body": body,
        "FromCountry": "GB",
        "To": SMS_NUMBER,
        "ToZip": "",
        "NumSegments": "1",
        "MessageSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": CITIZEN_SMS,
        "ApiVersion": "2010-04-01",
        **extra,
    }


def status_params(sid: str, status: str, **extra: str) -> dict[str, str]:
    """A status callback's form for one of our replies."""
    return {
        "SmsSid": sid,
        "SmsStatus": status,
        "MessageStatus": status,
        "ChannelToAddress": CITIZEN_WHATSAPP.removeprefix("whatsapp:"),
        "To": CITIZEN_WHATSAPP,
        "ChannelPrefix": "whatsapp",
        "MessageSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": WHATSAPP_NUMBER,
        "ApiVersion": "2010-04-01",
        **extra,
    }


def sign(url: str, params: dict[str, str], token: str = AUTH_TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, params)


def post_signed(
    client: TestClient,
    path: str,
    params: dict[str, str],
    *,
    token: str = AUTH_TOKEN,
    signed_url: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """Posts the form as Twilio would, signed for the public URL (or ``signed_url``)."""
    signature = sign(signed_url or f"{PUBLIC}{path}", params, token)
    return client.post(
        path, data=params, headers={"X-Twilio-Signature": signature, **(headers or {})}
    )


def wait_until(condition: Callable[[], Any], timeout: float = TIMEOUT) -> Any:
    """Polls until ``condition`` returns something truthy, and returns it."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for a condition")
        time.sleep(0.02)


def stored(factory: sessionmaker[Session], channel: str, external_id: str) -> list[Message]:
    """Every message of the citizen's conversation on a channel, oldest first."""
    with factory() as session:
        return list(
            session.scalars(
                select(Message)
                .join(Conversation, Conversation.id == Message.conversation_id)
                .where(Conversation.channel == channel, Conversation.external_id == external_id)
                .order_by(Message.id)
            ).all()
        )


def outbound(factory: sessionmaker[Session], channel: str, external_id: str) -> list[Message]:
    return [m for m in stored(factory, channel, external_id) if m.direction == Direction.OUTBOUND]


def state_of(factory: sessionmaker[Session], message_id: int) -> DeliveryState:
    with factory() as session:
        return session.get_one(Message, message_id).delivery_state


def outbox_item(factory: sessionmaker[Session], message_id: int) -> OutboxItem:
    with factory() as session:
        return session.scalars(select(OutboxItem).where(OutboxItem.message_id == message_id)).one()


def row_counts(factory: sessionmaker[Session]) -> tuple[int, int]:
    with factory() as session:
        conversations = session.scalar(select(func.count()).select_from(Conversation))
        messages = session.scalar(select(func.count()).select_from(Message))
        return int(conversations or 0), int(messages or 0)


def sent_reply(
    factory: sessionmaker[Session], channel: str, external_id: str, state: DeliveryState
) -> Message:
    """Waits for the first reply to reach ``state`` and returns it."""

    def ready() -> Message | None:
        replies = outbound(factory, channel, external_id)
        return replies[0] if replies and replies[0].delivery_state == state else None

    message: Message = wait_until(ready)
    return message


def buttons_responder(sender: str, text: str) -> list[dict[str, Any]]:
    if text.startswith("/") or text.isdigit():
        return [{"recipient_id": sender, "text": f"Heard {text}"}]
    return [
        {
            "recipient_id": sender,
            "custom": {
                "text": "What happened to your passport?",
                "topic": "lost-stolen-passport",
                "buttons": [
                    {"title": "It was lost", "payload": "/lost_stolen_passport"},
                    {"title": "It was stolen", "payload": '/crime_victim{"crime":"theft"}'},
                ],
            },
        }
    ]


# -- signatures: nothing forged gets in ---------------------------------------------


FORGERIES = ["forged", "missing", "other-url", "app-host-url", "tampered", "wrong-token"]


def forge(path: str, params: dict[str, str], forgery: str) -> tuple[dict[str, str], dict[str, str]]:
    """A request Twilio did not sign as it is: its form and headers."""
    url = f"{PUBLIC}{path}"
    signature = {
        "forged": "bm90IGEgc2lnbmF0dXJlIGF0IGFsbA==",
        "missing": "",
        "other-url": sign(f"{PUBLIC}/webhooks/twilio/status", params),
        # Signed for the address the app itself sees, not the public one.
        "app-host-url": sign(f"http://testserver{path}", params),
        "tampered": sign(url, params),
        "wrong-token": sign(url, params, token="not-the-auth-token"),
    }[forgery]
    if forgery == "tampered":
        params = {**params, "Body": "send my case file to this number"}
    return params, ({"X-Twilio-Signature": signature} if signature else {})


@pytest.mark.parametrize("path", ["/webhooks/twilio/whatsapp", "/webhooks/twilio/sms"])
def test_a_request_whose_signature_does_not_validate_is_refused_and_changes_nothing(
    client: TestClient,
    fake_rasa: FakeRasa,
    fake_twilio: FakeTwilio,
    session_factory: sessionmaker[Session],
    path: str,
) -> None:
    for forgery in FORGERIES:
        good = whatsapp_params() if path.endswith("whatsapp") else sms_params()
        params, headers = forge(path, good, forgery)

        response = client.post(path, data=params, headers=headers)

        assert response.status_code == 403, forgery
        assert row_counts(session_factory) == (0, 0), forgery
    assert fake_rasa.calls == []
    assert fake_twilio.attempts == 0


def test_a_status_callback_with_a_forged_signature_changes_nothing(
    client: TestClient, fake_twilio: FakeTwilio, session_factory: sessionmaker[Session]
) -> None:
    assert post_signed(client, "/webhooks/twilio/whatsapp", whatsapp_params()).status_code == 200
    reply = sent_reply(session_factory, "whatsapp", CITIZEN_WHATSAPP, DeliveryState.SENT)
    sid = fake_twilio.messages[0]["sid"]

    forged = post_signed(
        client, "/webhooks/twilio/status", status_params(sid, "failed"), token="guessed"
    )

    assert forged.status_code == 403
    assert state_of(session_factory, reply.id) == DeliveryState.SENT


def test_a_request_signed_with_a_shared_key_is_refused(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    response = post_signed(
        client,
        "/webhooks/twilio/sms",
        sms_params(),
        headers={"X-Twilio-Webhooks-Signature-Settings": "key=KSx,algorithm=HMAC_SHA256"},
    )
    assert response.status_code == 403
    assert row_counts(session_factory) == (0, 0)


def test_a_correctly_signed_request_behind_a_proxy_is_stored_and_answered_with_empty_twiml(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    # The test client talks to http://testserver; Twilio signed the public URL.
    response = post_signed(client, "/webhooks/twilio/sms", sms_params("hello"))

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    assert response.text.replace(" ", "").endswith("<Response/>")
    [inbound, *_] = stored(session_factory, "sms", CITIZEN_SMS)
    assert inbound.direction == Direction.INBOUND and inbound.text == "hello"


def test_the_query_string_is_part_of_the_signed_url(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    path = "/webhooks/twilio/sms?source=uk-number"
    params = sms_params("hello")

    assert post_signed(client, path, params).status_code == 200
    without_query = post_signed(
        client, path, sms_params("again"), signed_url=f"{PUBLIC}/webhooks/twilio/sms"
    )
    assert without_query.status_code == 403
    assert len([m for m in stored(session_factory, "sms", CITIZEN_SMS) if m.text == "again"]) == 0


def test_a_public_url_with_a_path_prefix_behind_a_proxy_that_strips_it(
    settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    prefixed = settings.model_copy(update={"public_base_url": f"{PUBLIC}/consular/"})
    app = create_app(prefixed)
    with TestClient(app, client=("127.0.0.1", 50000), root_path="/consular") as client:
        params = sms_params("hello")
        signature = sign(f"{PUBLIC}/consular/webhooks/twilio/sms", params)
        response = client.post(
            "/webhooks/twilio/sms", data=params, headers={"X-Twilio-Signature": signature}
        )
    assert response.status_code == 200
    assert stored(session_factory, "sms", CITIZEN_SMS)[0].text == "hello"


# -- channel off, malformed, rate limits ----------------------------------------------


def test_the_channels_answer_404_when_twilio_is_not_configured(app_with: ClientFactory) -> None:
    with app_with(twilio_account_sid="", twilio_auth_token="") as client:
        for path in ("/whatsapp", "/sms", "/status"):
            response = post_signed(client, f"/webhooks/twilio{path}", sms_params())
            assert response.status_code == 404


def test_a_channel_without_its_own_number_is_off(
    app_with: ClientFactory, session_factory: sessionmaker[Session]
) -> None:
    with app_with(twilio_sms_from="") as client:
        assert post_signed(client, "/webhooks/twilio/sms", sms_params()).status_code == 404
        assert (
            post_signed(client, "/webhooks/twilio/whatsapp", whatsapp_params()).status_code == 200
        )


MALFORMED = [
    ("/webhooks/twilio/sms", {**sms_params(), "MessageSid": "", "SmsMessageSid": ""}, "Sid"),
    ("/webhooks/twilio/sms", {**sms_params(), "From": ""}, "From"),
    ("/webhooks/twilio/sms", {**sms_params(), "NumMedia": "two"}, "NumMedia"),
    ("/webhooks/twilio/sms", {**sms_params(), "NumMedia": "1"}, "MediaUrl0"),
    ("/webhooks/twilio/sms", {**sms_params(), "NumMedia": "11"}, "NumMedia"),
    ("/webhooks/twilio/whatsapp", whatsapp_params(From="+447700900123"), "whatsapp"),
    ("/webhooks/twilio/sms", sms_params(From=CITIZEN_WHATSAPP), "sms"),
    ("/webhooks/twilio/whatsapp", whatsapp_params(Latitude="north"), "Latitude"),
    ("/webhooks/twilio/whatsapp", whatsapp_params(Latitude="91", Longitude="0"), "range"),
    ("/webhooks/twilio/status", {"MessageSid": "SM1"}, "MessageStatus"),
]


def test_a_malformed_request_is_refused_logged_and_changes_nothing(
    client: TestClient, session_factory: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    for path, params, reason in MALFORMED:
        caplog.clear()

        response = post_signed(client, path, params)

        assert response.status_code == 400, reason
        assert reason in response.json()["detail"]
        assert "malformed Twilio webhook" in caplog.text
        assert row_counts(session_factory) == (0, 0), reason


def test_a_body_that_is_not_a_form_is_refused(
    client: TestClient, session_factory: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    body = json.dumps(sms_params())
    response = client.post(
        "/webhooks/twilio/sms",
        content=body,
        headers={
            "Content-Type": "application/json",
            "X-Twilio-Signature": sign(f"{PUBLIC}/webhooks/twilio/sms", {}),
        },
    )
    assert response.status_code == 400
    assert "malformed Twilio webhook" in caplog.text
    assert row_counts(session_factory) == (0, 0)


def test_rate_limits_apply_per_sender_number(
    app_with: ClientFactory, session_factory: sessionmaker[Session]
) -> None:
    with app_with(rate_limit_per_sender="2/minute") as client:
        first = post_signed(client, "/webhooks/twilio/sms", sms_params("one"))
        second = post_signed(client, "/webhooks/twilio/sms", sms_params("two"))
        third = post_signed(client, "/webhooks/twilio/sms", sms_params("three"))
        someone_else = post_signed(
            client, "/webhooks/twilio/sms", sms_params("hi", From="+447700900999")
        )

    assert [first.status_code, second.status_code, third.status_code] == [200, 200, 429]
    assert someone_else.status_code == 200
    texts = [m.text for m in stored(session_factory, "sms", CITIZEN_SMS)]
    assert "three" not in texts


def test_rate_limits_apply_per_endpoint(app_with: ClientFactory) -> None:
    with app_with(rate_limit_per_endpoint="2/minute") as client:
        codes = [
            post_signed(
                client, "/webhooks/twilio/sms", sms_params(From=f"+44770090{n:04d}")
            ).status_code
            for n in range(3)
        ]
        # Another endpoint has its own allowance.
        whatsapp = post_signed(client, "/webhooks/twilio/whatsapp", whatsapp_params())
    assert codes == [200, 200, 429]
    assert whatsapp.status_code == 200


# -- text in, reply out -------------------------------------------------------------------


def test_a_whatsapp_message_gets_its_reply_through_the_rest_api(
    client: TestClient,
    fake_rasa: FakeRasa,
    fake_twilio: FakeTwilio,
    session_factory: sessionmaker[Session],
) -> None:
    assert (
        post_signed(client, "/webhooks/twilio/whatsapp", whatsapp_params("hello")).status_code
        == 200
    )

    [sent] = wait_until(lambda: fake_twilio.sent_to(CITIZEN_WHATSAPP))
    assert sent["From"] == WHATSAPP_NUMBER
    assert sent["To"] == CITIZEN_WHATSAPP
    assert sent["Body"] == "You said: hello"
    assert sent["StatusCallback"] == STATUS_CALLBACK
    reply = sent_reply(session_factory, "whatsapp", CITIZEN_WHATSAPP, DeliveryState.SENT)
    assert outbox_item(session_factory, reply.id).provider_message_id == sent["sid"]
    conversation_id = reply.conversation_id
    assert fake_rasa.calls == [{"sender": conversation_id, "message": "hello"}]


def test_an_sms_gets_its_reply_through_the_rest_api(
    client: TestClient, fake_twilio: FakeTwilio, session_factory: sessionmaker[Session]
) -> None:
    assert (
        post_signed(client, "/webhooks/twilio/sms", sms_params("lost passport")).status_code == 200
    )

    [sent] = wait_until(lambda: fake_twilio.sent_to(CITIZEN_SMS))
    assert (sent["From"], sent["To"], sent["Body"]) == (
        SMS_NUMBER,
        CITIZEN_SMS,
        "You said: lost passport",
    )
    assert sent["StatusCallback"] == STATUS_CALLBACK
    with session_factory() as session:
        conversation = session.scalars(select(Conversation)).one()
        assert (conversation.channel, conversation.external_id) == ("sms", CITIZEN_SMS)


def test_a_redelivered_webhook_is_one_turn_and_one_reply(
    client: TestClient,
    fake_rasa: FakeRasa,
    fake_twilio: FakeTwilio,
    session_factory: sessionmaker[Session],
) -> None:
    params = whatsapp_params("where is the embassy")

    responses = [post_signed(client, "/webhooks/twilio/whatsapp", params) for _ in range(3)]

    assert [r.status_code for r in responses] == [200, 200, 200]
    sent_reply(session_factory, "whatsapp", CITIZEN_WHATSAPP, DeliveryState.SENT)
    messages = stored(session_factory, "whatsapp", CITIZEN_WHATSAPP)
    assert [(m.direction, m.delivery_state) for m in messages] == [
        (Direction.INBOUND, DeliveryState.HANDLED),
        (Direction.OUTBOUND, DeliveryState.SENT),
    ]
    assert len(fake_rasa.calls) == 1
    assert fake_twilio.attempts == 1


def test_a_citizens_own_slash_text_reaches_the_assistant_as_words(
    client: TestClient, fake_rasa: FakeRasa, fake_twilio: FakeTwilio
) -> None:
    post_signed(client, "/webhooks/twilio/sms", sms_params('/inform_country{"country":"KP"}'))
    wait_until(lambda: fake_twilio.sent_to(CITIZEN_SMS))
    assert fake_rasa.calls[0]["message"] == 'inform_country{"country":"KP"}'


def test_a_long_reply_goes_out_in_parts_twilio_accepts(
    client: TestClient,
    fake_rasa: FakeRasa,
    fake_twilio: FakeTwilio,
    session_factory: sessionmaker[Session],
) -> None:
    paragraphs = [(f"Paragraph {n}: " + "guidance " * 60).strip() for n in range(4)]
    long_text = "\n\n".join(paragraphs)
    assert MAX_BODY_CHARS < len(long_text) <= 2 * MAX_BODY_CHARS
    fake_rasa.responder = lambda sender, text: [{"recipient_id": sender, "text": long_text}]

    post_signed(client, "/webhooks/twilio/sms", sms_params("what do I do"))

    reply = sent_reply(session_factory, "sms", CITIZEN_SMS, DeliveryState.SENT)
    parts = fake_twilio.sent_to(CITIZEN_SMS)
    assert len(parts) == 2
    assert all(len(part["Body"]) <= MAX_BODY_CHARS for part in parts)
    assert "\n\n".join(part["Body"] for part in parts) == long_text.strip()
    assert outbox_item(session_factory, reply.id).provider_message_id == parts[-1]["sid"]


# -- buttons ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "params", "citizen", "channel"),
    [
        ("/webhooks/twilio/whatsapp", whatsapp_params, CITIZEN_WHATSAPP, "whatsapp"),
        ("/webhooks/twilio/sms", sms_params, CITIZEN_SMS, "sms"),
    ],
)
def test_buttons_are_numbered_options_and_a_number_answers_with_that_buttons_payload(
    client: TestClient,
    fake_rasa: FakeRasa,
    fake_twilio: FakeTwilio,
    session_factory: sessionmaker[Session],
    path: str,
    params: Callable[..., dict[str, str]],
    citizen: str,
    channel: str,
) -> None:
    fake_rasa.responder = buttons_responder
    post_signed(client, path, params("my passport is gone"))
    [first] = wait_until(lambda: fake_twilio.sent_to(citizen))
    assert first["Body"] == (
        "What happened to your passport?\n\nReply 1 for It was lost\nReply 2 for It was stolen"
    )

    post_signed(client, path, params(" 2 "))

    wait_until(lambda: len(fake_twilio.sent_to(citizen)) == 2)
    assert fake_rasa.calls[-1]["message"] == '/crime_victim{"crime":"theft"}'
    inbound = [
        m for m in stored(session_factory, channel, citizen) if m.direction == Direction.INBOUND
    ]
    assert inbound[-1].text == " 2 "  # the transcript shows what the citizen typed


def test_a_number_with_no_options_to_answer_is_just_text(
    client: TestClient, fake_rasa: FakeRasa, fake_twilio: FakeTwilio
) -> None:
    post_signed(client, "/webhooks/twilio/sms", sms_params("hello"))
    wait_until(lambda: fake_twilio.sent_to(CITIZEN_SMS))
    post_signed(client, "/webhooks/twilio/sms", sms_params("2"))
    wait_until(lambda: len(fake_twilio.sent_to(CITIZEN_SMS)) == 2)
    assert fake_rasa.calls[-1]["message"] == "2"


# -- media and location -------------------------------------------------------------------


def test_media_is_kept_for_an_officer_and_acknowledged(
    client: TestClient,
    fake_rasa: FakeRasa,
    fake_twilio: FakeTwilio,
    session_factory: sessionmaker[Session],
) -> None:
    media = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/MM1/Media"
    params = whatsapp_params(
        "",
        NumMedia="2",
        MessageType="image",
        MediaUrl0=f"{media}/ME1",
        MediaContentType0="image/jpeg",
        MediaUrl1=f"{media}/ME2",
        MediaContentType1="application/pdf",
    )

    assert post_signed(client, "/webhooks/twilio/whatsapp", params).status_code == 200

    [ack] = wait_until(lambda: fake_twilio.sent_to(CITIZEN_WHATSAPP))
    assert "received your file and photo" in ack["Body"]
    with session_factory() as session:
        attachments = session.scalars(select(Attachment).order_by(Attachment.id)).all()
        assert [(a.kind, a.provider_ref, a.content_type) for a in attachments] == [
            ("image", f"{media}/ME1", "image/jpeg"),
            ("document", f"{media}/ME2", "application/pdf"),
        ]
    assert fake_rasa.calls == []  # nothing to read: no text came with the files


def test_a_whatsapp_location_tells_the_assistant_the_country(
    client: TestClient,
    fake_rasa: FakeRasa,
    fake_twilio: FakeTwilio,
    session_factory: sessionmaker[Session],
) -> None:
    params = whatsapp_params("", MessageType="location", Latitude="40.4168", Longitude="-3.7038")

    assert post_signed(client, "/webhooks/twilio/whatsapp", params).status_code == 200

    wait_until(lambda: fake_twilio.sent_to(CITIZEN_WHATSAPP))
    assert fake_rasa.calls[0]["message"] == '/inform_country{"country": "ES"}'
    [inbound, _reply] = stored(session_factory, "whatsapp", CITIZEN_WHATSAPP)
    assert inbound.text == "Shared a location (Spain)"
    with session_factory() as session:
        [attachment] = session.scalars(select(Attachment)).all()
        assert attachment.kind == "location"
        assert attachment.details["country"] == "ES"


def test_a_location_nobody_can_place_gets_a_question_not_a_turn(
    client: TestClient, fake_rasa: FakeRasa, fake_twilio: FakeTwilio
) -> None:
    params = whatsapp_params("", MessageType="location", Latitude="0.0", Longitude="-30.0")

    post_signed(client, "/webhooks/twilio/whatsapp", params)

    [sent] = wait_until(lambda: fake_twilio.sent_to(CITIZEN_WHATSAPP))
    assert "type the name of the country" in sent["Body"]
    assert fake_rasa.calls == []


# -- delivery: retries, status callbacks, errors ----------------------------------------


def test_the_outbox_retries_until_the_api_takes_the_reply(
    client: TestClient, fake_twilio: FakeTwilio, session_factory: sessionmaker[Session]
) -> None:
    fake_twilio.fail_next(2)

    post_signed(client, "/webhooks/twilio/sms", sms_params("hello"))

    reply = sent_reply(session_factory, "sms", CITIZEN_SMS, DeliveryState.SENT)
    assert fake_twilio.attempts == 3
    assert len(fake_twilio.sent_to(CITIZEN_SMS)) == 1
    item = outbox_item(session_factory, reply.id)
    assert (item.state, item.attempts) == (OutboxState.SENT, 3)


def test_status_callbacks_move_delivery_state_forward_only_and_are_published(
    client: TestClient, fake_twilio: FakeTwilio, session_factory: sessionmaker[Session]
) -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    hub = client.app.state.hub  # type: ignore[attr-defined]
    publish = hub.publish
    hub.publish = lambda conversation_id, event: (
        events.append((conversation_id, event)),
        publish(conversation_id, event),
    )
    post_signed(client, "/webhooks/twilio/whatsapp", whatsapp_params("hello"))
    reply = sent_reply(session_factory, "whatsapp", CITIZEN_WHATSAPP, DeliveryState.SENT)
    sid = fake_twilio.messages[0]["sid"]
    # The outbox announces "sent" itself, just after recording it.
    wait_until(lambda: any(event.get("state") == "sent" for _, event in events))
    events.clear()

    for status in ("queued", "sent", "delivered", "sent", "read"):
        response = post_signed(client, "/webhooks/twilio/status", status_params(sid, status))
        assert response.status_code == 200

    assert state_of(session_factory, reply.id) == DeliveryState.DELIVERED
    assert events == [
        (
            reply.conversation_id,
            {"type": "delivery", "message_id": reply.id, "state": "delivered"},
        )
    ]


def test_a_failed_status_callback_marks_the_reply_failed_with_the_error_code(
    client: TestClient, fake_twilio: FakeTwilio, session_factory: sessionmaker[Session]
) -> None:
    post_signed(client, "/webhooks/twilio/whatsapp", whatsapp_params("hello"))
    reply = sent_reply(session_factory, "whatsapp", CITIZEN_WHATSAPP, DeliveryState.SENT)
    sid = fake_twilio.messages[0]["sid"]

    post_signed(client, "/webhooks/twilio/status", status_params(sid, "failed", ErrorCode="30008"))

    assert state_of(session_factory, reply.id) == DeliveryState.FAILED
    item = outbox_item(session_factory, reply.id)
    assert item.state == OutboxState.FAILED
    assert item.last_error is not None and "30008" in item.last_error


def test_undelivered_outside_the_window_marks_the_reply_undeliverable(
    client: TestClient, fake_twilio: FakeTwilio, session_factory: sessionmaker[Session]
) -> None:
    post_signed(client, "/webhooks/twilio/whatsapp", whatsapp_params("hello"))
    reply = sent_reply(session_factory, "whatsapp", CITIZEN_WHATSAPP, DeliveryState.SENT)
    sid = fake_twilio.messages[0]["sid"]

    post_signed(
        client, "/webhooks/twilio/status", status_params(sid, "undelivered", ErrorCode="63016")
    )

    assert state_of(session_factory, reply.id) == DeliveryState.UNDELIVERABLE


def test_a_status_callback_for_an_unknown_message_changes_nothing(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    response = post_signed(client, "/webhooks/twilio/status", status_params(new_sid(), "delivered"))
    assert response.status_code == 200
    assert row_counts(session_factory) == (0, 0)


def test_a_refusal_that_retrying_cannot_fix_fails_the_reply_after_one_attempt(
    client: TestClient, fake_twilio: FakeTwilio, session_factory: sessionmaker[Session]
) -> None:
    fake_twilio.error_next(21610, message="Attempt to send to unsubscribed recipient")

    post_signed(client, "/webhooks/twilio/sms", sms_params("hello"))

    reply = sent_reply(session_factory, "sms", CITIZEN_SMS, DeliveryState.FAILED)
    item = outbox_item(session_factory, reply.id)
    assert item.attempts == 1 and item.last_error is not None and "21610" in item.last_error
    assert fake_twilio.attempts == 1


def test_twilio_saying_outside_the_window_marks_the_reply_undeliverable(
    client: TestClient, fake_twilio: FakeTwilio, session_factory: sessionmaker[Session]
) -> None:
    fake_twilio.error_next(63016, message="Failed to send freeform message")

    post_signed(client, "/webhooks/twilio/whatsapp", whatsapp_params("hello"))

    reply = sent_reply(session_factory, "whatsapp", CITIZEN_WHATSAPP, DeliveryState.UNDELIVERABLE)
    assert outbox_item(session_factory, reply.id).state == OutboxState.UNDELIVERABLE
    assert fake_twilio.attempts == 1 and fake_twilio.messages == []


# -- WhatsApp's 24-hour window ------------------------------------------------------------


def age_the_conversation(fake_rasa: FakeRasa, factory: sessionmaker[Session]) -> None:
    """While Rasa answers, the citizen's last message becomes 25 hours old."""

    def on_call(conversation_id: str, text: str) -> None:
        with session_scope(factory) as session:
            conversation = session.get_one(Conversation, conversation_id)
            conversation.last_inbound_at = utcnow() - timedelta(hours=25)

    fake_rasa.on_call = on_call


def test_outside_the_window_without_a_template_nothing_is_sent_and_the_reply_is_undeliverable(
    client: TestClient,
    fake_rasa: FakeRasa,
    fake_twilio: FakeTwilio,
    session_factory: sessionmaker[Session],
) -> None:
    age_the_conversation(fake_rasa, session_factory)

    post_signed(client, "/webhooks/twilio/whatsapp", whatsapp_params("hello"))

    reply = sent_reply(session_factory, "whatsapp", CITIZEN_WHATSAPP, DeliveryState.UNDELIVERABLE)
    item = outbox_item(session_factory, reply.id)
    assert item.state == OutboxState.UNDELIVERABLE
    assert item.last_error == "outside WhatsApp's 24-hour window; no template configured"
    assert fake_twilio.attempts == 0


def test_outside_the_window_the_approved_template_carries_the_reply(
    app_with: ClientFactory,
    fake_rasa: FakeRasa,
    fake_twilio: FakeTwilio,
    session_factory: sessionmaker[Session],
) -> None:
    age_the_conversation(fake_rasa, session_factory)
    fake_rasa.responder = buttons_responder

    with app_with(twilio_whatsapp_template_sid=TEMPLATE_SID) as client:
        post_signed(client, "/webhooks/twilio/whatsapp", whatsapp_params("passport"))
        [sent] = wait_until(lambda: fake_twilio.sent_to(CITIZEN_WHATSAPP))
        sent_reply(session_factory, "whatsapp", CITIZEN_WHATSAPP, DeliveryState.SENT)

    assert sent["ContentSid"] == TEMPLATE_SID
    assert "Body" not in sent
    assert json.loads(sent["ContentVariables"]) == {
        "1": "What happened to your passport? Reply 1 for It was lost Reply 2 for It was stolen"
    }
    assert (sent["From"], sent["StatusCallback"]) == (WHATSAPP_NUMBER, STATUS_CALLBACK)


def test_the_window_does_not_apply_to_sms(
    client: TestClient,
    fake_rasa: FakeRasa,
    fake_twilio: FakeTwilio,
    session_factory: sessionmaker[Session],
) -> None:
    age_the_conversation(fake_rasa, session_factory)
    post_signed(client, "/webhooks/twilio/sms", sms_params("hello"))
    [sent] = wait_until(lambda: fake_twilio.sent_to(CITIZEN_SMS))
    assert sent["Body"] == "You said: hello"


def test_when_twilio_says_the_window_has_closed_the_template_is_tried_at_once(
    app_with: ClientFactory, fake_twilio: FakeTwilio, session_factory: sessionmaker[Session]
) -> None:
    fake_twilio.error_next(63016, message="Failed to send freeform message")

    with app_with(twilio_whatsapp_template_sid=TEMPLATE_SID) as client:
        post_signed(client, "/webhooks/twilio/whatsapp", whatsapp_params("hello"))
        sent_reply(session_factory, "whatsapp", CITIZEN_WHATSAPP, DeliveryState.SENT)

    [sent] = fake_twilio.sent_to(CITIZEN_WHATSAPP)
    assert sent["ContentSid"] == TEMPLATE_SID
    assert fake_twilio.attempts == 2


# -- the assistant down -------------------------------------------------------------------


def test_with_rasa_down_the_citizen_gets_the_holding_reply_and_an_answer_after_recovery(
    client: TestClient,
    fake_rasa: FakeRasa,
    fake_twilio: FakeTwilio,
    session_factory: sessionmaker[Session],
) -> None:
    fake_rasa.down = True

    post_signed(client, "/webhooks/twilio/sms", sms_params("my son has been arrested"))

    [holding] = wait_until(lambda: fake_twilio.sent_to(CITIZEN_SMS))
    assert EMERGENCY_LINE in holding["Body"]
    with session_factory() as session:
        conversation = session.scalars(select(Conversation)).one()
        assert conversation.owner == Owner.QUEUE
    [inbound, *_] = stored(session_factory, "sms", CITIZEN_SMS)
    assert inbound.delivery_state == DeliveryState.HELD

    fake_rasa.down = False

    answers = wait_until(
        lambda: (sent := fake_twilio.sent_to(CITIZEN_SMS)) and len(sent) >= 2 and sent
    )
    assert answers[1]["Body"] == "You said: my son has been arrested"
    wait_until(lambda: state_of(session_factory, inbound.id) == DeliveryState.HANDLED)
    with session_factory() as session:
        assert session.scalars(select(Conversation)).one().owner == Owner.BOT
    answered = [c for c in fake_rasa.calls if c["message"] == "my son has been arrested"]
    assert len(answered) == 2  # refused once while down, answered once after
    assert len(fake_twilio.sent_to(CITIZEN_SMS)) == 2


# -- secrets ------------------------------------------------------------------------------


def test_the_auth_token_never_reaches_the_logs(
    app_with: ClientFactory,
    fake_twilio: FakeTwilio,
    session_factory: sessionmaker[Session],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    fake_twilio.fail_next(1)
    with app_with() as client:
        post_signed(client, "/webhooks/twilio/whatsapp", whatsapp_params("hello"))
        post_signed(client, "/webhooks/twilio/sms", sms_params("hello"), token="forged")
        sent_reply(session_factory, "whatsapp", CITIZEN_WHATSAPP, DeliveryState.SENT)
    rotated = "rotated-token-the-fake-does-not-know"
    with app_with(twilio_auth_token=rotated) as client:
        post_signed(client, "/webhooks/twilio/sms", sms_params("hi"), token=rotated)
        wait_until(lambda: fake_twilio.unauthorised >= 1)

    assert "Twilio refused our credentials" in caplog.text
    for secret in (AUTH_TOKEN, rotated):
        assert secret not in caplog.text
        assert basic_authorization(ACCOUNT_SID, secret).split()[1] not in caplog.text


# -- units --------------------------------------------------------------------------------


def test_render_text_and_chosen_payload_agree() -> None:
    buttons = [{"title": "Yes", "payload": "/affirm"}, {"title": "No", "payload": "/deny"}]
    assert render_text("Is that right?", buttons) == (
        "Is that right?\n\nReply 1 for Yes\nReply 2 for No"
    )
    assert render_text("Plain", []) == "Plain"
    assert chosen_payload("1", buttons) == "/affirm"
    assert chosen_payload("2.", buttons) == "/deny"
    assert chosen_payload("3", buttons) is None
    assert chosen_payload("0", buttons) is None
    assert chosen_payload("12 euros", buttons) is None


def test_split_body_cuts_at_breaks_and_keeps_every_word() -> None:
    text = ("word " * 500).strip()
    parts = split_body(text, limit=300)
    assert all(len(part) <= 300 for part in parts)
    assert " ".join(parts) == text
    assert split_body("short") == ["short"]
    assert split_body("x" * 250, limit=100) == ["x" * 100, "x" * 100, "x" * 50]


def test_template_variable_is_one_line_and_short_enough() -> None:
    assert template_variable("a\n\nb\tc") == "a b c"
    long = template_variable("word " * 1000, limit=100)
    assert len(long) <= 100 and long.endswith("…") and "\n" not in long


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (400, 21211, PermanentSendError),  # invalid To number
        (400, 21610, PermanentSendError),  # unsubscribed (STOP)
        (400, 63016, UndeliverableError),  # outside the WhatsApp window
        (429, 20429, SendError),
        (500, 20500, SendError),
        (503, None, SendError),
        (401, 20003, SendError),  # credentials: an operator fixes it; keep retrying
    ],
)
def test_api_errors_map_to_retry_give_up_or_undeliverable(
    status: int, code: int | None, expected: type[SendError]
) -> None:
    error = classify(TwilioRestException(status, "/Messages.json", "refused", code, "POST"))
    assert type(error) is expected


def test_api_errors_do_not_repeat_the_citizens_number() -> None:
    message = "Unable to create record: The 'To' number +447700 900123 is not a valid phone number."
    error = classify(TwilioRestException(400, "/Messages.json", message, 21211, "POST"))
    assert "900123" not in str(error)
    assert "21211" in str(error) and "<number>" in str(error)


def test_the_api_origin_rewrite_touches_only_api_twilio_com() -> None:
    async def check() -> None:
        default = TwilioApiHttpClient(timeout=5)
        pointed = TwilioApiHttpClient(api_base_url="http://127.0.0.1:9/", timeout=5)
        try:
            url = "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json"
            assert default.rewrite(url) == url
            assert (
                pointed.rewrite(url) == "http://127.0.0.1:9/2010-04-01/Accounts/AC1/Messages.json"
            )
            for other in (
                "https://api.twilio.com.example.net/2010-04-01",
                "https://messaging.twilio.com/v1/Services",
            ):
                assert pointed.rewrite(other) == other
        finally:
            await default.close()
            await pointed.close()

    asyncio.run(check())


def test_a_retry_after_a_partial_send_sends_only_the_parts_left() -> None:
    calls: list[dict[str, Any]] = []

    async def create_async(**fields: Any) -> SimpleNamespace:
        calls.append(fields)
        if len(calls) == 2:
            raise TwilioRestException(500, "/Messages.json", "busy", 20500, "POST")
        return SimpleNamespace(sid=f"SM{len(calls)}")

    client = SimpleNamespace(messages=SimpleNamespace(create_async=create_async))
    sender = TwilioSender(channel="sms", client=client, from_=SMS_NUMBER, status_callback="cb")
    text = "first paragraph " * 80 + "\n\n" + "second paragraph " * 80
    outgoing = Outgoing(
        item_id=7,
        message_id=7,
        conversation_id="c",
        channel="sms",
        recipient=CITIZEN_SMS,
        text=text,
    )

    async def attempt_twice() -> str | None:
        with pytest.raises(SendError):
            await sender.send(outgoing)
        return (await sender.send(outgoing)).provider_message_id

    assert asyncio.run(attempt_twice()) == "SM3"
    assert [call["body"].split()[0] for call in calls] == ["first", "second", "second"]
