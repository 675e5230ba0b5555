"""The Telegram channel against a fake Bot API on loopback, with the real python-telegram-bot.

Every scenario goes through the app as Telegram would use it: updates are
posted to the webhook (or served by the fake's getUpdates in polling mode),
and replies are read from what the fake Bot API received.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.channels.telegram import inline_keyboard, split_text
from bot.channels.telegram_inbound import help_text
from bot.cli import main as cli
from bot.core.config import Settings, get_settings
from bot.db.models import (
    Attachment,
    Conversation,
    DeliveryState,
    Direction,
    Handoff,
    Message,
    OutboxItem,
    OutboxState,
    Owner,
    Sender,
)
from bot.main import create_app
from tests.support.fake_rasa import FakeRasa
from tests.support.fake_telegram import FakeTelegram

T = TypeVar("T")

SECRET = "test-telegram-webhook-secret_0123"
CHAT = 424242
OTHER_CHAT = 515151
EMERGENCY_PHONE = "+44 20 7008 5000"
MADRID = (40.4168, -3.7038)
MID_ATLANTIC = (30.0, -40.0)
SPAIN = '/inform_country{"country":"ES"}'
FRANCE = '/inform_country{"country":"FR"}'

_update_ids = itertools.count(700_000)
_message_ids = itertools.count(1)


# -- fixtures ---------------------------------------------------------------------------


def telegram_settings(settings: Settings, fake: FakeTelegram, **changes: Any) -> Settings:
    """The conftest settings with Telegram pointed at the fake and fast retries."""
    values: dict[str, Any] = {
        "telegram_bot_token": fake.token,
        "telegram_webhook_secret": SECRET,
        "telegram_api_base_url": fake.api_base_url,
        "telegram_file_base_url": fake.file_base_url,
        "public_base_url": "https://consular.example.org",
        "outbox_backoff_seconds": 0.05,
        "outbox_backoff_max_seconds": 0.2,
        "outbox_poll_seconds": 0.05,
        "recovery_poll_seconds": 0.1,
        **changes,
    }
    return settings.model_copy(update=values)


def app_client(settings: Settings) -> TestClient:
    return TestClient(create_app(settings), client=("127.0.0.1", 50000))


@pytest.fixture
def tg(settings: Settings, fake_telegram: FakeTelegram) -> Iterator[TestClient]:
    with app_client(telegram_settings(settings, fake_telegram)) as client:
        yield client


# -- helpers ------------------------------------------------------------------------------


def wait_for(check: Callable[[], T], *, what: str, timeout: float = 5.0) -> T:
    """Polls ``check`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def person(chat: int) -> dict[str, Any]:
    return {"id": chat, "is_bot": False, "first_name": "Citizen"}


def message_update(
    chat: int = CHAT, *, chat_type: str = "private", **content: Any
) -> dict[str, Any]:
    return {
        "update_id": next(_update_ids),
        "message": {
            "message_id": next(_message_ids),
            "date": 1_760_000_000,
            "chat": {"id": chat, "type": chat_type, "first_name": "Citizen"},
            "from": person(chat),
            **content,
        },
    }


def text_update(text: str, chat: int = CHAT, **kwargs: Any) -> dict[str, Any]:
    return message_update(chat, text=text, **kwargs)


def button_update(data: str, chat: int = CHAT) -> dict[str, Any]:
    update_id = next(_update_ids)
    return {
        "update_id": update_id,
        "callback_query": {
            "id": f"press-{update_id}",
            "from": person(chat),
            "chat_instance": f"instance-{chat}",
            "data": data,
            "message": {
                "message_id": 5001,
                "date": 1_760_000_000,
                "chat": {"id": chat, "type": "private", "first_name": "Citizen"},
                "from": {"id": 987654321, "is_bot": True, "first_name": "Consular assistant"},
                "text": "Which country are you in?",
            },
        },
    }


def post(
    client: TestClient, update: dict[str, Any] | bytes, *, secret: str | None = SECRET
) -> Response:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    body = update if isinstance(update, bytes) else json.dumps(update).encode()
    return client.post("/webhooks/telegram", content=body, headers=headers)


def rasa_texts(fake_rasa: FakeRasa) -> list[str]:
    return [str(call["message"]) for call in fake_rasa.calls]


def count(factory: sessionmaker[Session], model: type) -> int:
    with factory() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def messages(factory: sessionmaker[Session]) -> list[Message]:
    with factory() as session:
        return list(session.scalars(select(Message).order_by(Message.id)))


def delivered(factory: sessionmaker[Session], expected: int) -> list[Message]:
    """All messages once there are ``expected`` of them and none is still queued."""
    found = messages(factory)
    if len(found) != expected or any(m.delivery_state == DeliveryState.QUEUED for m in found):
        return []
    return found


def outbox(factory: sessionmaker[Session]) -> list[OutboxItem]:
    with factory() as session:
        return list(session.scalars(select(OutboxItem).order_by(OutboxItem.id)))


def settled(factory: sessionmaker[Session]) -> bool:
    """No turn in progress and nothing waiting in the outbox."""
    with factory() as session:
        busy_inbound = session.scalar(
            select(func.count())
            .select_from(Message)
            .where(
                Message.direction == Direction.INBOUND,
                Message.delivery_state == DeliveryState.RECEIVED,
            )
        )
        busy_outbox = session.scalar(
            select(func.count())
            .select_from(OutboxItem)
            .where(OutboxItem.state.in_([OutboxState.PENDING, OutboxState.SENDING]))
        )
    return busy_inbound == 0 and busy_outbox == 0


def country_question(sender: str, text: str) -> list[dict[str, Any]]:
    """Asks for a country with buttons; echoes button payloads and anything else."""
    if text.startswith("/inform_country"):
        return [{"recipient_id": sender, "text": f"Answer for {text}"}]
    return [
        {
            "recipient_id": sender,
            "custom": {
                "text": "Which country are you in?",
                "topic": "lost-stolen-passport",
                "buttons": [
                    {"title": "Spain", "payload": SPAIN},
                    {"title": "France", "payload": FRANCE},
                ],
            },
        }
    ]


# -- refusing what is not Telegram's ------------------------------------------------------


@pytest.mark.parametrize("secret", [None, "", "wrong-secret", SECRET[:-1], SECRET + "x"], ids=repr)
def test_webhook_without_the_right_secret_is_403_and_stores_nothing(
    tg: TestClient,
    fake_rasa: FakeRasa,
    fake_telegram: FakeTelegram,
    session_factory: sessionmaker[Session],
    secret: str | None,
) -> None:
    response = post(tg, text_update("I lost my passport"), secret=secret)

    assert response.status_code == 403
    assert count(session_factory, Conversation) == 0
    assert count(session_factory, Message) == 0
    assert fake_rasa.calls == []
    assert fake_telegram.calls_to("sendMessage") == []


def test_webhook_is_404_while_telegram_is_not_configured(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    response = post(client, text_update("hello"))

    assert response.status_code == 404
    assert count(session_factory, Message) == 0


def test_webhook_refuses_everything_when_no_secret_is_configured(
    settings: Settings, fake_telegram: FakeTelegram, session_factory: sessionmaker[Session]
) -> None:
    with app_client(telegram_settings(settings, fake_telegram, telegram_webhook_secret="")) as c:
        assert post(c, text_update("hello"), secret="").status_code == 403
        assert post(c, text_update("hello"), secret=None).status_code == 403
    assert count(session_factory, Message) == 0


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"\xff\xfe",
        b"[]",
        b'"update"',
        b'{"message": {"text": "no update id"}}',
        b'{"update_id": "12"}',
        b'{"update_id": true}',
        b'{"update_id": 12, "message": "not a message"}',
        b'{"update_id": 12, "message": {"text": "no chat or date"}}',
    ],
    ids=lambda body: body.decode(errors="replace")[:30],
)
def test_malformed_or_non_update_body_is_400_and_changes_nothing(
    tg: TestClient,
    fake_rasa: FakeRasa,
    session_factory: sessionmaker[Session],
    caplog: pytest.LogCaptureFixture,
    body: bytes,
) -> None:
    with caplog.at_level(logging.WARNING, logger="bot.channels.telegram"):
        response = post(tg, body)

    assert response.status_code == 400
    assert "refused" in caplog.text
    assert count(session_factory, Conversation) == 0
    assert count(session_factory, Message) == 0
    assert fake_rasa.calls == []


def test_group_chats_are_acknowledged_but_not_served(
    tg: TestClient, fake_rasa: FakeRasa, session_factory: sessionmaker[Session]
) -> None:
    response = post(tg, text_update("hello all", chat=-100123, chat_type="supergroup"))

    assert response.status_code == 200
    assert response.json()["outcome"] == "ignored"
    assert count(session_factory, Message) == 0
    assert fake_rasa.calls == []


def test_rate_limit_is_per_chat(
    settings: Settings, fake_telegram: FakeTelegram, session_factory: sessionmaker[Session]
) -> None:
    limited = telegram_settings(settings, fake_telegram, rate_limit_per_sender="2/minute")
    with app_client(limited) as client:
        assert post(client, text_update("one")).status_code == 200
        assert post(client, text_update("two")).status_code == 200
        third = post(client, text_update("three"))
        other_chat = post(client, text_update("hello", chat=OTHER_CHAT))

    assert third.status_code == 429
    assert third.headers["Retry-After"]
    assert other_chat.status_code == 200
    assert sorted(
        m.text for m in messages(session_factory) if m.direction == Direction.INBOUND
    ) == [
        "hello",
        "one",
        "two",
    ]


def test_rate_limit_is_per_endpoint(
    settings: Settings, fake_telegram: FakeTelegram, session_factory: sessionmaker[Session]
) -> None:
    limited = telegram_settings(settings, fake_telegram, rate_limit_per_endpoint="2/minute")
    with app_client(limited) as client:
        statuses = [
            post(client, text_update("hello", chat=chat)).status_code for chat in (1001, 1002, 1003)
        ]

    assert statuses == [200, 200, 429]
    assert count(session_factory, Conversation) == 2


# -- text in, text out ---------------------------------------------------------------------


def test_text_message_is_stored_then_answered_through_the_outbox(
    tg: TestClient,
    fake_rasa: FakeRasa,
    fake_telegram: FakeTelegram,
    session_factory: sessionmaker[Session],
) -> None:
    update = text_update("hello")

    response = post(tg, update)

    assert response.status_code == 200
    assert response.json()["outcome"] == "stored"
    [sent] = wait_for(fake_telegram.sent, what="the reply")
    assert sent["chat_id"] == CHAT
    assert sent["text"] == "You said: hello"
    assert "reply_markup" not in sent
    with session_factory() as session:
        conversation = session.scalars(select(Conversation)).one()
        assert (conversation.channel, conversation.external_id) == ("telegram", str(CHAT))
        # Rasa never sees the Telegram chat id, only the conversation UUID.
        assert fake_rasa.calls == [{"sender": conversation.id, "message": "hello"}]
    inbound, reply = wait_for(lambda: delivered(session_factory, 2), what="the reply marked sent")
    assert inbound.provider_id == f"update:{update['update_id']}"
    assert inbound.delivery_state == DeliveryState.HANDLED
    assert reply.delivery_state == DeliveryState.SENT
    [item] = outbox(session_factory)
    assert item.provider_message_id == "5001"


def test_duplicate_update_is_one_turn_and_one_reply(
    tg: TestClient,
    fake_rasa: FakeRasa,
    fake_telegram: FakeTelegram,
    session_factory: sessionmaker[Session],
) -> None:
    update = text_update("I lost my passport")

    first = post(tg, update)
    again = post(tg, update)

    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json()["outcome"] == "duplicate"
    wait_for(fake_telegram.sent, what="the reply")
    wait_for(lambda: settled(session_factory), what="the turn and the outbox to settle")
    assert rasa_texts(fake_rasa) == ["I lost my passport"]
    assert fake_telegram.sent_texts() == ["You said: I lost my passport"]
    assert count(session_factory, Message) == 2


def test_buttons_become_an_inline_keyboard_and_a_press_reaches_the_assistant(
    tg: TestClient,
    fake_rasa: FakeRasa,
    fake_telegram: FakeTelegram,
    session_factory: sessionmaker[Session],
) -> None:
    fake_rasa.responder = country_question
    post(tg, text_update("I lost my passport"))
    [question] = wait_for(fake_telegram.sent, what="the question with buttons")
    keyboard = question["reply_markup"]["inline_keyboard"]
    assert [[button["text"] for button in row] for row in keyboard] == [["Spain"], ["France"]]
    asked = next(m for m in messages(session_factory) if m.direction == Direction.OUTBOUND)
    assert [row[0]["callback_data"] for row in keyboard] == [f"{asked.id}:0", f"{asked.id}:1"]

    press = button_update(keyboard[1][0]["callback_data"])
    response = post(tg, press)

    assert response.status_code == 200
    [answer] = fake_telegram.calls_to("answerCallbackQuery")
    assert answer.params["callback_query_id"] == press["callback_query"]["id"]
    assert "text" not in answer.params
    wait_for(lambda: len(fake_telegram.sent()) == 2, what="the answer to the press")
    assert rasa_texts(fake_rasa) == ["I lost my passport", FRANCE]
    assert fake_telegram.sent_texts()[1] == f"Answer for {FRANCE}"
    pressed = [m for m in messages(session_factory) if m.direction == Direction.INBOUND][1]
    assert pressed.text == "France"  # what the citizen saw and chose
    assert pressed.provider_id == f"update:{press['update_id']}"

    # Telegram redelivering the press is still one turn.
    assert post(tg, press).json()["outcome"] == "duplicate"
    wait_for(lambda: settled(session_factory), what="everything to settle")
    assert len(fake_rasa.calls) == 2


def test_a_press_naming_no_button_sent_to_this_chat_is_answered_and_not_stored(
    tg: TestClient,
    fake_rasa: FakeRasa,
    fake_telegram: FakeTelegram,
    session_factory: sessionmaker[Session],
) -> None:
    fake_rasa.responder = country_question
    post(tg, text_update("I lost my passport", chat=OTHER_CHAT))
    [question] = wait_for(fake_telegram.sent, what="another chat's buttons")
    someone_elses = question["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    before = count(session_factory, Message)

    for data in (someone_elses, "999999:0", "1:99", "not-ours", ""):
        assert post(tg, button_update(data)).json()["outcome"] == "expired-button"

    answers = fake_telegram.calls_to("answerCallbackQuery")
    assert len(answers) == 5
    assert all("no longer available" in answer.params["text"] for answer in answers)
    assert count(session_factory, Message) == before
    assert rasa_texts(fake_rasa) == ["I lost my passport"]


# -- commands ---------------------------------------------------------------------------------


def test_start_greets_through_the_assistant(
    tg: TestClient,
    fake_rasa: FakeRasa,
    fake_telegram: FakeTelegram,
    session_factory: sessionmaker[Session],
) -> None:
    post(tg, text_update("/start"))

    wait_for(fake_telegram.sent, what="the greeting")
    assert rasa_texts(fake_rasa) == ["/greet"]
    inbound = messages(session_factory)[0]
    assert inbound.text == "/start"  # stored as the citizen typed it


def test_help_lists_the_service_and_the_24_7_line_without_the_assistant(
    tg: TestClient,
    fake_rasa: FakeRasa,
    fake_telegram: FakeTelegram,
    session_factory: sessionmaker[Session],
) -> None:
    post(tg, text_update("/help@consular_test_bot"))

    [sent] = wait_for(fake_telegram.sent, what="the help text")
    assert EMERGENCY_PHONE in sent["text"]
    assert "passport" in sent["text"] and "embassy" in sent["text"]
    assert sent["text"] == help_text(EMERGENCY_PHONE)
    assert fake_rasa.calls == []
    inbound, reply = wait_for(lambda: delivered(session_factory, 2), what="the help marked sent")
    assert inbound.delivery_state == DeliveryState.HANDLED
    assert (reply.sender, reply.delivery_state) == (Sender.SYSTEM, DeliveryState.SENT)


def test_other_commands_and_captions_reach_the_assistant_as_words_not_intents(
    tg: TestClient, fake_rasa: FakeRasa, fake_telegram: FakeTelegram
) -> None:
    post(tg, text_update('/human_agent{"urgent": true}'))
    wait_for(lambda: len(fake_telegram.sent()) == 1, what="the first reply")
    post(tg, text_update("/passport lost"))
    wait_for(lambda: len(fake_telegram.sent()) == 2, what="the second reply")
    voice = {"file_id": "v-9", "file_unique_id": "v9", "duration": 2}
    post(tg, message_update(voice=voice, caption='  /inform_country{"country":"FR"}'))

    wait_for(lambda: len(fake_telegram.sent()) == 4, what="acknowledgement and reply")
    assert rasa_texts(fake_rasa) == [
        'human_agent{"urgent": true}',
        "passport lost",
        'inform_country{"country":"FR"}',
    ]


# -- locations and files ------------------------------------------------------------------------


def test_location_reaches_the_assistant_as_its_country(
    tg: TestClient,
    fake_rasa: FakeRasa,
    fake_telegram: FakeTelegram,
    session_factory: sessionmaker[Session],
) -> None:
    latitude, longitude = MADRID
    post(tg, message_update(location={"latitude": latitude, "longitude": longitude}))

    wait_for(fake_telegram.sent, what="the answer for Spain")
    assert rasa_texts(fake_rasa) == [SPAIN]
    inbound = messages(session_factory)[0]
    assert inbound.text == "Shared a location (Spain)"
    with session_factory() as session:
        [kept] = session.scalars(select(Attachment)).all()
        assert kept.kind == "location"
        assert kept.details["country"] == "ES"
        assert kept.details["latitude"] == pytest.approx(latitude)


def test_location_far_from_any_city_asks_for_the_country(
    tg: TestClient, fake_rasa: FakeRasa, fake_telegram: FakeTelegram
) -> None:
    latitude, longitude = MID_ATLANTIC
    post(tg, message_update(location={"latitude": latitude, "longitude": longitude}))

    [sent] = wait_for(fake_telegram.sent, what="the question")
    assert "type the name of the country" in sent["text"]
    assert fake_rasa.calls == []


def test_photo_is_kept_for_an_officer_and_acknowledged(
    tg: TestClient,
    fake_rasa: FakeRasa,
    fake_telegram: FakeTelegram,
    session_factory: sessionmaker[Session],
) -> None:
    photo = [
        {"file_id": "small-1", "file_unique_id": "s1", "width": 90, "height": 90, "file_size": 900},
        {
            "file_id": "large-1",
            "file_unique_id": "l1",
            "width": 1280,
            "height": 960,
            "file_size": 180_000,
        },
    ]
    post(tg, message_update(photo=photo))

    [sent] = wait_for(fake_telegram.sent, what="the acknowledgement")
    assert "received your photo" in sent["text"]
    assert fake_rasa.calls == []  # nothing for the assistant to read
    with session_factory() as session:
        [kept] = session.scalars(select(Attachment)).all()
        assert (kept.kind, kept.provider_ref, kept.content_type, kept.size_bytes) == (
            "photo",
            "large-1",
            "image/jpeg",
            180_000,
        )


def test_document_is_kept_and_its_caption_reaches_the_assistant(
    tg: TestClient,
    fake_rasa: FakeRasa,
    fake_telegram: FakeTelegram,
    session_factory: sessionmaker[Session],
) -> None:
    document = {
        "file_id": "doc-1",
        "file_unique_id": "d1",
        "file_name": "police-report.pdf",
        "mime_type": "application/pdf",
        "file_size": 54_321,
    }
    post(tg, message_update(document=document, caption="my wallet was stolen"))

    wait_for(lambda: len(fake_telegram.sent()) == 2, what="acknowledgement and answer")
    assert "received your file" in fake_telegram.sent_texts()[0]
    assert rasa_texts(fake_rasa) == ["my wallet was stolen"]
    with session_factory() as session:
        [kept] = session.scalars(select(Attachment)).all()
        assert (kept.kind, kept.provider_ref, kept.filename, kept.content_type) == (
            "document",
            "doc-1",
            "police-report.pdf",
            "application/pdf",
        )
        assert kept.message.text == "my wallet was stolen"


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        ({"voice": {"file_id": "v-1", "file_unique_id": "v1", "duration": 4}}, "voice"),
        (
            {
                "video": {
                    "file_id": "m-1",
                    "file_unique_id": "m1",
                    "width": 640,
                    "height": 480,
                    "duration": 9,
                    "mime_type": "video/mp4",
                }
            },
            "video",
        ),
    ],
)
def test_voice_and_video_are_kept_and_acknowledged(
    tg: TestClient,
    fake_telegram: FakeTelegram,
    session_factory: sessionmaker[Session],
    content: dict[str, Any],
    kind: str,
) -> None:
    post(tg, message_update(**content))

    wait_for(fake_telegram.sent, what="the acknowledgement")
    with session_factory() as session:
        [kept] = session.scalars(select(Attachment)).all()
        assert kept.kind == kind


# -- delivery ---------------------------------------------------------------------------------


@pytest.mark.parametrize("failure", ["500", "429"])
def test_reply_is_sent_once_after_the_api_fails_twice(
    tg: TestClient,
    fake_telegram: FakeTelegram,
    session_factory: sessionmaker[Session],
    failure: str,
) -> None:
    fake_telegram.fail_next_sends(2, failure)

    post(tg, text_update("hello"))

    wait_for(fake_telegram.sent, what="the reply after two failures")
    wait_for(lambda: settled(session_factory), what="the outbox to settle")
    assert fake_telegram.sent_texts() == ["You said: hello"]
    assert len(fake_telegram.calls_to("sendMessage")) == 3
    [item] = outbox(session_factory)
    assert (item.state, item.attempts) == (OutboxState.SENT, 3)
    reply = messages(session_factory)[1]
    assert reply.delivery_state == DeliveryState.SENT


@pytest.mark.parametrize("refusal", ["403", "chat-not-found"])
def test_a_refused_chat_marks_the_reply_failed_without_retrying(
    tg: TestClient,
    fake_telegram: FakeTelegram,
    session_factory: sessionmaker[Session],
    refusal: str,
) -> None:
    fake_telegram.refuse_sends = refusal

    post(tg, text_update("hello"))

    wait_for(lambda: settled(session_factory), what="the outbox to give up")
    [item] = outbox(session_factory)
    assert item.state == OutboxState.FAILED
    assert item.attempts == 1
    assert messages(session_factory)[1].delivery_state == DeliveryState.FAILED
    time.sleep(0.3)  # several outbox polls: still no second attempt
    assert len(fake_telegram.calls_to("sendMessage")) == 1


def test_assistant_down_gives_a_holding_reply_then_the_held_message_is_answered(
    tg: TestClient,
    fake_rasa: FakeRasa,
    fake_telegram: FakeTelegram,
    session_factory: sessionmaker[Session],
) -> None:
    fake_rasa.down = True

    post(tg, text_update("I have been robbed"))

    [holding] = wait_for(fake_telegram.sent, what="the holding reply")
    assert EMERGENCY_PHONE in holding["text"]
    with session_factory() as session:
        conversation = session.scalars(select(Conversation)).one()
        assert conversation.owner == Owner.QUEUE
        assert session.scalars(select(Handoff)).one().closed_at is None

    fake_rasa.down = False

    wait_for(lambda: len(fake_telegram.sent()) == 2, what="the answer after recovery")
    assert fake_telegram.sent_texts()[1] == "You said: I have been robbed"
    with session_factory() as session:
        assert session.scalars(select(Conversation)).one().owner == Owner.BOT
        inbound = session.scalars(select(Message).where(Message.direction == "inbound")).one()
        assert inbound.delivery_state == DeliveryState.HANDLED


def test_long_replies_are_split_and_buttons_go_on_the_last_part() -> None:
    text = ("word " * 300 + "\n\n") * 4

    parts = split_text(text, 4000)

    assert len(parts) == 2
    assert all(len(part) <= 4000 for part in parts)
    assert " ".join(" ".join(parts).split()) == " ".join(text.split())
    assert split_text("short", 4000) == ["short"]
    assert inline_keyboard(7, []) is None
    keyboard = inline_keyboard(7, [{"title": "Yes", "payload": "/affirm"}])
    assert keyboard is not None
    assert keyboard.inline_keyboard[0][0].callback_data == "7:0"


# -- polling mode -------------------------------------------------------------------------------


def test_polling_mode_removes_the_webhook_and_stores_each_update_once(
    settings: Settings,
    fake_rasa: FakeRasa,
    fake_telegram: FakeTelegram,
    session_factory: sessionmaker[Session],
) -> None:
    fake_telegram.webhook = {"url": "https://old.example.org/webhooks/telegram"}
    polling = telegram_settings(settings, fake_telegram, telegram_mode="polling")
    update = text_update("hello from polling")
    after = update["update_id"] + 1

    def confirmed() -> bool:
        return any(c.params.get("offset") == after for c in fake_telegram.calls_to("getUpdates"))

    with app_client(polling):
        fake_telegram.push_update(update)
        wait_for(fake_telegram.sent, what="the reply to a polled update")
        wait_for(confirmed, what="getUpdates confirming the update")
    assert fake_telegram.calls_to("deleteWebhook")
    assert fake_telegram.webhook == {}
    assert rasa_texts(fake_rasa) == ["hello from polling"]

    # Telegram hands the same update out again (say it was never confirmed):
    # the next run stores nothing new and answers nothing twice.
    fake_telegram.push_update(update)
    calls_before = len(fake_telegram.calls_to("getUpdates"))
    with app_client(polling):
        wait_for(
            lambda: any(
                c.params.get("offset") == after
                for c in fake_telegram.calls_to("getUpdates")[calls_before:]
            ),
            what="the redelivered update confirmed",
        )
    assert rasa_texts(fake_rasa) == ["hello from polling"]
    assert fake_telegram.sent_texts() == ["You said: hello from polling"]
    assert count(session_factory, Message) == 2


# -- the CLI ----------------------------------------------------------------------------------


@pytest.fixture
def cli_env(
    monkeypatch: pytest.MonkeyPatch, database_url: str, fake_telegram: FakeTelegram
) -> Iterator[pytest.MonkeyPatch]:
    monkeypatch.setenv("CONSULAR_DATABASE_URL", database_url)
    monkeypatch.setenv("CONSULAR_TELEGRAM_BOT_TOKEN", fake_telegram.token)
    monkeypatch.setenv("CONSULAR_TELEGRAM_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("CONSULAR_PUBLIC_BASE_URL", "https://consular.example.org/")
    monkeypatch.setenv("CONSULAR_TELEGRAM_API_BASE_URL", fake_telegram.api_base_url)
    monkeypatch.setenv("CONSULAR_TELEGRAM_FILE_BASE_URL", fake_telegram.file_base_url)
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def test_cli_set_webhook_registers_the_url_and_secret(
    cli_env: pytest.MonkeyPatch,
    fake_telegram: FakeTelegram,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)

    assert cli(["telegram", "set-webhook"]) == 0

    [call] = fake_telegram.calls_to("setWebhook")
    assert call.params["url"] == "https://consular.example.org/webhooks/telegram"
    assert call.params["secret_token"] == SECRET
    assert call.params["allowed_updates"] == ["message", "callback_query"]
    out = capsys.readouterr().out
    assert "webhook set to https://consular.example.org/webhooks/telegram" in out
    assert fake_telegram.token not in out + caplog.text

    assert cli(["telegram", "webhook-info"]) == 0
    assert "url: https://consular.example.org/webhooks/telegram" in capsys.readouterr().out

    assert cli(["telegram", "delete-webhook", "--drop-pending-updates"]) == 0
    [deleted] = fake_telegram.calls_to("deleteWebhook")
    assert deleted.params["drop_pending_updates"] is True
    assert fake_telegram.webhook == {}


@pytest.mark.parametrize(
    ("env", "value", "complaint"),
    [
        ("CONSULAR_TELEGRAM_BOT_TOKEN", "", "CONSULAR_TELEGRAM_BOT_TOKEN"),
        ("CONSULAR_TELEGRAM_WEBHOOK_SECRET", "", "CONSULAR_TELEGRAM_WEBHOOK_SECRET"),
        ("CONSULAR_TELEGRAM_WEBHOOK_SECRET", "short", "16-256 characters"),
        ("CONSULAR_TELEGRAM_WEBHOOK_SECRET", "has spaces in it, sadly", "16-256 characters"),
        ("CONSULAR_PUBLIC_BASE_URL", "http://127.0.0.1:8000", "https"),
        ("CONSULAR_PUBLIC_BASE_URL", "https://consular.example.org:8000", "ports"),
        ("CONSULAR_TELEGRAM_BOT_TOKEN", "111:not-the-token-0123456789", "Telegram refused"),
    ],
)
def test_cli_set_webhook_says_clearly_what_is_missing(
    cli_env: pytest.MonkeyPatch,
    fake_telegram: FakeTelegram,
    capsys: pytest.CaptureFixture[str],
    env: str,
    value: str,
    complaint: str,
) -> None:
    cli_env.setenv(env, value)
    get_settings.cache_clear()

    assert cli(["telegram", "set-webhook"]) == 2

    err = capsys.readouterr().err
    assert complaint in err
    assert "not-the-token-0123456789" not in err
    assert fake_telegram.calls_to("setWebhook") == []


# -- the token stays secret --------------------------------------------------------------------


def test_the_bot_token_never_reaches_the_logs(
    settings: Settings,
    fake_telegram: FakeTelegram,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with app_client(telegram_settings(settings, fake_telegram)) as client:
        post(client, text_update("hello"))
        wait_for(fake_telegram.sent, what="the reply")

    assert fake_telegram.calls_to("getMe")  # the client really talked to the fake
    assert fake_telegram.token not in caplog.text
    assert fake_telegram.token.split(":")[1] not in caplog.text


def test_a_rejected_token_is_reported_without_quoting_it(
    settings: Settings,
    fake_telegram: FakeTelegram,
    session_factory: sessionmaker[Session],
    caplog: pytest.LogCaptureFixture,
) -> None:
    wrong = "111:wrong-token-that-must-stay-secret"
    caplog.set_level(logging.DEBUG)
    with app_client(telegram_settings(settings, fake_telegram, telegram_bot_token=wrong)) as client:
        post(client, text_update("hello"))
        [item] = wait_for(
            lambda: [i for i in outbox(session_factory) if i.last_error], what="a failed attempt"
        )

    assert "rejected CONSULAR_TELEGRAM_BOT_TOKEN" in caplog.text
    assert "wrong-token-that-must-stay-secret" not in caplog.text
    assert "wrong-token-that-must-stay-secret" not in (item.last_error or "")
