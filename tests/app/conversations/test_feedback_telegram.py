"""'Was this helpful?' on Telegram: an inline keyboard, and a press that never reaches Rasa."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.db.models import GuidanceFeedback
from tests.app.channels import test_telegram
from tests.app.channels.test_telegram import (
    button_update,
    messages,
    post,
    rasa_texts,
    settled,
    text_update,
    wait_for,
)
from tests.app.conversations.test_feedback import ANSWER, guidance_responder, publish
from tests.support.fake_rasa import FakeRasa
from tests.support.fake_telegram import FakeTelegram

# The Telegram tests' client: the app with Telegram pointed at the fake Bot API.
tg = test_telegram.tg


def test_the_question_is_an_inline_keyboard_and_a_press_is_recorded(
    tg: TestClient,
    fake_rasa: FakeRasa,
    fake_telegram: FakeTelegram,
    session_factory: sessionmaker[Session],
) -> None:
    _, revision_id = publish(session_factory)
    fake_rasa.responder = guidance_responder(revision_id)
    post(tg, text_update("I lost my passport in Madrid"))

    answer, question = wait_for(
        lambda: len(fake_telegram.sent()) == 2 and fake_telegram.sent(), what="answer and question"
    )
    assert answer["text"] == ANSWER and "reply_markup" not in answer
    assert question["text"] == "Was this helpful?"
    keyboard = question["reply_markup"]["inline_keyboard"]
    assert [[button["text"] for button in row] for row in keyboard] == [["Yes"], ["No"]]
    # The callback data names our message and the button; the payload stays with us.
    asked = messages(session_factory)[-1]
    assert [row[0]["callback_data"] for row in keyboard] == [f"{asked.id}:0", f"{asked.id}:1"]

    post(tg, button_update(keyboard[1][0]["callback_data"]))

    wait_for(lambda: len(fake_telegram.sent()) == 3, what="the thank-you")
    wait_for(lambda: settled(session_factory), what="everything to settle")
    assert "in other words" in fake_telegram.sent_texts()[2]
    assert rasa_texts(fake_rasa) == ["I lost my passport in Madrid"]
    with session_factory() as session:
        [row] = session.scalars(select(GuidanceFeedback)).all()
        assert (row.revision_id, row.channel, row.helpful) == (revision_id, "telegram", False)


def test_a_typed_feedback_payload_on_telegram_is_read_as_words(
    tg: TestClient,
    fake_rasa: FakeRasa,
    fake_telegram: FakeTelegram,
    session_factory: sessionmaker[Session],
) -> None:
    _, revision_id = publish(session_factory)
    fake_rasa.responder = guidance_responder(revision_id)
    post(tg, text_update("I lost my passport in Madrid"))
    wait_for(lambda: len(fake_telegram.sent()) == 2, what="answer and question")

    typed = f'/feedback{{"revision_id":{revision_id},"helpful":true}}'
    post(tg, text_update(typed))

    wait_for(lambda: len(fake_rasa.calls) == 2, what="the typed text to reach the assistant")
    wait_for(lambda: settled(session_factory), what="everything to settle")
    assert rasa_texts(fake_rasa)[1] == typed.lstrip("/")
    with session_factory() as session:
        assert session.scalars(select(GuidanceFeedback)).all() == []
