"""Paging the on-call supervisor by SMS, through the real twilio library and a fake API."""

from __future__ import annotations

import asyncio
from datetime import time, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.channels.twilio_sending import TwilioApi
from bot.conversations import store
from bot.core.config import Settings
from bot.db.models import AuditEvent, Handoff, Officer, OfficerRole, Shift, utcnow
from bot.db.session import session_scope
from bot.handoff.escalation import Escalator, TwilioSmsPager
from tests.support.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio

SMS_NUMBER = "+447700900000"
SUPERVISOR_PHONE = "+447700900111"
AFTER = timedelta(minutes=5)
REPEAT = timedelta(minutes=5)


@pytest.fixture
def twilio_settings(settings: Settings, fake_twilio: FakeTwilio) -> Settings:
    return settings.model_copy(
        update={
            "twilio_account_sid": ACCOUNT_SID,
            "twilio_auth_token": AUTH_TOKEN,
            "twilio_sms_from": SMS_NUMBER,
            "twilio_api_base_url": fake_twilio.url,  # type: ignore[attr-defined]
        }
    )


def add_supervisor(factory: sessionmaker[Session], *, on_call: bool = True) -> None:
    with session_scope(factory) as session:
        session.add(
            Officer(
                email="sup@fcdo.test",
                name="Sam Supervisor",
                role=OfficerRole.SUPERVISOR,
                timezone="Asia/Singapore",
                phone=SUPERVISOR_PHONE,
                shifts=[
                    Shift(weekday=day, starts=time(0), ends=time(0), on_call=on_call)
                    for day in range(7)
                ],
            )
        )


def queue_urgent(factory: sessionmaker[Session], *, waited: timedelta, urgent: bool = True) -> int:
    with session_scope(factory) as session:
        conversation = store.create_conversation(session=session, channel="webchat")
        conversation.topic, conversation.country = "kidnap", "NG"
        handoff = store.open_handoff(
            session=session,
            conversation=conversation,
            reason="urgent",
            urgent=urgent,
            summary="my husband has been taken, they want money, Ada Obi +234 800 000 0000",
        )
        handoff.queued_at = utcnow() - waited
        return handoff.id


def check(
    settings: Settings, factory: sessionmaker[Session], *, at: timedelta = timedelta(0)
) -> int:
    async def run() -> int:
        api = TwilioApi(settings)
        try:
            escalator = Escalator(
                session_factory=factory,
                pager=TwilioSmsPager(client=api.client, from_=SMS_NUMBER),
                after=AFTER,
                repeat=REPEAT,
                console_url="https://consular.example.gov.uk/console",
            )
            return await escalator.check_once(utcnow() + at)
        finally:
            await api.close()

    return asyncio.run(run())


def pages(fake: FakeTwilio) -> list[dict[str, Any]]:
    return fake.sent_to(SUPERVISOR_PHONE)


def test_an_urgent_wait_pages_the_on_call_supervisor_until_taken(
    twilio_settings: Settings, session_factory: sessionmaker[Session], fake_twilio: FakeTwilio
) -> None:
    add_supervisor(session_factory)
    handoff_id = queue_urgent(session_factory, waited=timedelta(minutes=6))

    assert check(twilio_settings, session_factory) == 1
    [page] = pages(fake_twilio)
    assert page["From"] == SMS_NUMBER
    assert "URGENT" in page["Body"] and "kidnap" in page["Body"] and "NG" in page["Body"]
    assert "https://consular.example.gov.uk/console" in page["Body"]
    # No personal data in a page.
    assert "Ada" not in page["Body"] and "+234" not in page["Body"]

    # Not again straight away ...
    assert check(twilio_settings, session_factory, at=timedelta(minutes=1)) == 0
    # ... but again after the repeat interval, while nobody has taken it.
    assert check(twilio_settings, session_factory, at=REPEAT + timedelta(seconds=1)) == 1
    assert len(pages(fake_twilio)) == 2

    with session_scope(session_factory) as session:
        handoff = session.get_one(Handoff, handoff_id)
        assert handoff.escalations == 2
        handoff.officer_id = session.scalars(select(Officer.id)).one()  # taken
        handoff.assigned_at = utcnow()
    assert check(twilio_settings, session_factory, at=REPEAT * 3) == 0
    assert len(pages(fake_twilio)) == 2

    with session_factory() as session:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "handoff.escalate")
        ).all()
        assert [event.details["paged"] for event in events] == [["sup@fcdo.test"]] * 2


def test_not_before_the_configured_wait_and_never_for_routine_entries(
    twilio_settings: Settings, session_factory: sessionmaker[Session], fake_twilio: FakeTwilio
) -> None:
    add_supervisor(session_factory)
    queue_urgent(session_factory, waited=timedelta(minutes=2))
    queue_urgent(session_factory, waited=timedelta(hours=1), urgent=False)
    assert check(twilio_settings, session_factory) == 0
    assert pages(fake_twilio) == []


def test_nobody_on_call_is_audited_and_retried_soon(
    twilio_settings: Settings, session_factory: sessionmaker[Session], fake_twilio: FakeTwilio
) -> None:
    add_supervisor(session_factory, on_call=False)
    queue_urgent(session_factory, waited=timedelta(minutes=10))
    assert check(twilio_settings, session_factory) == 0
    assert check(twilio_settings, session_factory, at=timedelta(seconds=30)) == 0
    with session_factory() as session:
        failed = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "handoff.escalate_failed")
        ).all()
        assert len(failed) == 1  # not once per poll


def test_a_failed_page_is_retried(
    twilio_settings: Settings, session_factory: sessionmaker[Session], fake_twilio: FakeTwilio
) -> None:
    add_supervisor(session_factory)
    queue_urgent(session_factory, waited=timedelta(minutes=10))
    fake_twilio.error_next(21211, status=400, message="invalid number")
    assert check(twilio_settings, session_factory) == 0
    assert check(twilio_settings, session_factory, at=timedelta(minutes=1, seconds=1)) == 1
    assert len(pages(fake_twilio)) == 1
