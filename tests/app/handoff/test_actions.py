"""The queue and officer actions: order, position, one owner, replies, audit."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from bot.conversations import store
from bot.db.models import (
    AuditEvent,
    Conversation,
    DeliveryState,
    Handoff,
    Message,
    Officer,
    OfficerNote,
    OfficerRole,
    OutboxItem,
    Owner,
    Sender,
    utcnow,
)
from bot.db.session import session_scope
from bot.handoff import actions, queue


def make_officer(
    factory: sessionmaker[Session], email: str, role: OfficerRole = OfficerRole.OFFICER
) -> int:
    with session_scope(factory) as session:
        person = Officer(email=email, name=email.split("@")[0].title(), role=role)
        session.add(person)
        session.flush()
        return person.id


def queue_conversation(
    factory: sessionmaker[Session],
    *,
    channel: str = "webchat",
    urgent: bool = False,
    minutes_ago: int = 0,
    summary: str = "help",
) -> tuple[str, int]:
    with session_scope(factory) as session:
        conversation = store.create_conversation(
            session=session, channel=channel, external_id=f"ext-{utcnow().timestamp()}-{summary}"
        )
        conversation.topic = "arrest-detention" if urgent else "passport-renewal-abroad"
        conversation.country = "AE" if urgent else "FR"
        handoff = store.open_handoff(
            session=session,
            conversation=conversation,
            reason="urgent" if urgent else "bot-handoff",
            urgent=urgent,
            summary=summary,
        )
        handoff.queued_at = utcnow() - timedelta(minutes=minutes_ago)
        return conversation.id, handoff.id


def officer(session: Session, officer_id: int) -> Officer:
    return session.get_one(Officer, officer_id)


def test_urgent_first_then_longest_waiting(session_factory: sessionmaker[Session]) -> None:
    queue_conversation(session_factory, minutes_ago=30, summary="old routine")
    queue_conversation(session_factory, minutes_ago=5, summary="new routine")
    queue_conversation(session_factory, urgent=True, minutes_ago=1, summary="new urgent")
    queue_conversation(session_factory, urgent=True, minutes_ago=10, summary="old urgent")
    with session_factory() as session:
        entries = queue.open_entries(session)
    assert [entry.summary for entry in entries] == [
        "old urgent",
        "new urgent",
        "old routine",
        "new routine",
    ]
    top = entries[0]
    assert (top.urgent, top.topic, top.country, top.channel) == (
        True,
        "arrest-detention",
        "AE",
        "webchat",
    )
    assert 590 <= top.waiting_seconds <= 700


def test_position_and_expected_wait(session_factory: sessionmaker[Session]) -> None:
    first, _ = queue_conversation(session_factory, minutes_ago=3, summary="a")
    second, _ = queue_conversation(session_factory, minutes_ago=1, summary="b")
    with session_factory() as session:
        assert queue.position(session, first) == 1
        assert queue.position(session, second) == 2
        assert queue.position(session, "nope") is None
    assert queue.expected_wait_minutes(2, officers_available=2) == 6
    assert queue.expected_wait_minutes(3, officers_available=0) == 18


def test_take_over_makes_one_owner_and_is_audited(session_factory: sessionmaker[Session]) -> None:
    conversation_id, handoff_id = queue_conversation(session_factory)
    alice = make_officer(session_factory, "alice@fcdo.test")
    bob = make_officer(session_factory, "bob@fcdo.test")
    with session_scope(session_factory) as session:
        actions.take_over(session=session, officer=officer(session, alice), handoff_id=handoff_id)
    with (
        session_scope(session_factory) as session,
        pytest.raises(actions.AlreadyTaken, match="Alice has already taken"),
    ):
        actions.take_over(session=session, officer=officer(session, bob), handoff_id=handoff_id)
    with session_factory() as session:
        handoff = session.get_one(Handoff, handoff_id)
        assert handoff.officer_id == alice and handoff.assigned_at is not None
        assert session.get_one(Conversation, conversation_id).owner == Owner.OFFICER
        [event] = session.scalars(select(AuditEvent)).all()
        assert (event.actor, event.action, event.subject) == (
            "officer:alice@fcdo.test",
            "handoff.take_over",
            conversation_id,
        )
        assert queue.position(session, conversation_id) is None  # no longer waiting


def race(factory: sessionmaker[Session], officers: list[int], handoff_id: int) -> list[int]:
    """Every officer clicks "take over" at the same moment; returns who won."""
    barrier = threading.Barrier(len(officers))
    winners: list[int] = []
    losers: list[int] = []

    def click(officer_id: int) -> None:
        barrier.wait()
        try:
            with session_scope(factory) as session:
                actions.take_over(
                    session=session, officer=officer(session, officer_id), handoff_id=handoff_id
                )
            winners.append(officer_id)
        except actions.AlreadyTaken:
            losers.append(officer_id)

    threads = [threading.Thread(target=click, args=(o,)) for o in officers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(losers) == len(officers) - len(winners)
    return winners


def test_two_officers_clicking_at_once_cannot_both_own_it(
    session_factory: sessionmaker[Session],
) -> None:
    officers = [make_officer(session_factory, f"officer{n}@fcdo.test") for n in range(6)]
    for _ in range(5):
        _, handoff_id = queue_conversation(session_factory)
        [winner] = race(session_factory, officers, handoff_id)
        with session_factory() as session:
            assert session.get_one(Handoff, handoff_id).officer_id == winner
            takes = session.scalars(
                select(AuditEvent).where(AuditEvent.action == "handoff.take_over")
            ).all()
            assert len([e for e in takes if e.details["handoff"] == handoff_id]) == 1


def test_reply_goes_through_the_outbox_on_push_channels(
    session_factory: sessionmaker[Session],
) -> None:
    conversation_id, handoff_id = queue_conversation(session_factory, channel="telegram")
    alice = make_officer(session_factory, "alice@fcdo.test")
    with session_scope(session_factory) as session:
        with pytest.raises(actions.NotYours):
            actions.reply(
                session=session, officer=officer(session, alice), handoff_id=handoff_id, text="hi"
            )
        actions.take_over(session=session, officer=officer(session, alice), handoff_id=handoff_id)
        message = actions.reply(
            session=session,
            officer=officer(session, alice),
            handoff_id=handoff_id,
            text="  I am Alice, a consular officer. I'm calling the police station now.  ",
        )
        message_id = message.id
    with session_factory() as session:
        message = session.get_one(Message, message_id)
        assert message.sender == Sender.OFFICER and message.officer_id == alice
        assert message.text.startswith("I am Alice") and message.text.endswith("now.")
        assert message.delivery_state == DeliveryState.QUEUED
        item = session.scalars(select(OutboxItem)).one()
        assert (item.channel, item.message_id) == ("telegram", message_id)
        assert session.get_one(Handoff, handoff_id).first_reply_at is not None


@pytest.mark.parametrize("text", ["", "   ", "x" * 4001])
def test_a_bad_reply_is_refused(session_factory: sessionmaker[Session], text: str) -> None:
    _, handoff_id = queue_conversation(session_factory)
    alice = make_officer(session_factory, "alice@fcdo.test")
    with session_scope(session_factory) as session:
        actions.take_over(session=session, officer=officer(session, alice), handoff_id=handoff_id)
    with session_scope(session_factory) as session, pytest.raises(actions.HandoffError):
        actions.reply(
            session=session, officer=officer(session, alice), handoff_id=handoff_id, text=text
        )


def test_notes_never_reach_the_citizen(session_factory: sessionmaker[Session]) -> None:
    conversation_id, _ = queue_conversation(session_factory, channel="whatsapp")
    alice = make_officer(session_factory, "alice@fcdo.test")
    with session_scope(session_factory) as session:
        actions.add_note(
            session=session,
            officer=officer(session, alice),
            conversation_id=conversation_id,
            text="Family says he has a lawyer",
        )
    with session_factory() as session:
        assert session.scalars(select(OfficerNote)).one().text == "Family says he has a lawyer"
        assert session.scalars(select(OutboxItem)).all() == []
        texts = [m.text for m in queue.transcript(session, conversation_id)]
        assert "Family says he has a lawyer" not in texts


def test_transfer_to_a_colleague(session_factory: sessionmaker[Session]) -> None:
    _, handoff_id = queue_conversation(session_factory)
    alice = make_officer(session_factory, "alice@fcdo.test")
    bob = make_officer(session_factory, "bob@fcdo.test")
    with session_scope(session_factory) as session:
        actions.take_over(session=session, officer=officer(session, alice), handoff_id=handoff_id)
        actions.transfer(
            session=session,
            officer=officer(session, alice),
            handoff_id=handoff_id,
            to=officer(session, bob),
        )
    with session_scope(session_factory) as session:
        assert session.get_one(Handoff, handoff_id).officer_id == bob
        with pytest.raises(actions.NotYours):
            actions.reply(
                session=session,
                officer=officer(session, alice),
                handoff_id=handoff_id,
                text="still me?",
            )


def test_a_supervisor_may_act_on_any_conversation(session_factory: sessionmaker[Session]) -> None:
    _, handoff_id = queue_conversation(session_factory)
    alice = make_officer(session_factory, "alice@fcdo.test")
    sup = make_officer(session_factory, "sup@fcdo.test", OfficerRole.SUPERVISOR)
    with session_scope(session_factory) as session:
        actions.take_over(session=session, officer=officer(session, alice), handoff_id=handoff_id)
        actions.transfer(
            session=session,
            officer=officer(session, sup),
            handoff_id=handoff_id,
            to=officer(session, sup),
        )
    with session_factory() as session:
        assert session.get_one(Handoff, handoff_id).officer_id == sup


def test_return_to_bot_greets_the_citizen_and_closes(
    session_factory: sessionmaker[Session],
) -> None:
    conversation_id, handoff_id = queue_conversation(session_factory)
    alice = make_officer(session_factory, "alice@fcdo.test")
    with session_scope(session_factory) as session:
        actions.take_over(session=session, officer=officer(session, alice), handoff_id=handoff_id)
        greeting = actions.return_to_bot(
            session=session, officer=officer(session, alice), handoff_id=handoff_id
        )
        assert greeting.sender == Sender.BOT and "back with the consular assistant" in greeting.text
    with session_factory() as session:
        handoff = session.get_one(Handoff, handoff_id)
        assert handoff.outcome == "returned-to-bot" and handoff.closed_at is not None
        assert session.get_one(Conversation, conversation_id).owner == Owner.BOT


def test_close_needs_a_known_outcome(session_factory: sessionmaker[Session]) -> None:
    _, handoff_id = queue_conversation(session_factory)
    alice = make_officer(session_factory, "alice@fcdo.test")
    with session_scope(session_factory) as session:
        actions.take_over(session=session, officer=officer(session, alice), handoff_id=handoff_id)
        with pytest.raises(actions.HandoffError, match="outcome"):
            actions.close(
                session=session,
                officer=officer(session, alice),
                handoff_id=handoff_id,
                outcome="whatever",
            )
        actions.close(
            session=session,
            officer=officer(session, alice),
            handoff_id=handoff_id,
            outcome="resolved",
        )
    with (
        session_scope(session_factory) as session,
        pytest.raises(actions.HandoffError, match="closed"),
    ):
        actions.reply(
            session=session, officer=officer(session, alice), handoff_id=handoff_id, text="hello?"
        )
    with session_factory() as session:
        assert [e.action for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))] == [
            "handoff.take_over",
            "handoff.close",
        ]


def test_a_closed_handoff_cannot_be_taken(session_factory: sessionmaker[Session]) -> None:
    _, handoff_id = queue_conversation(session_factory)
    alice = make_officer(session_factory, "alice@fcdo.test")
    with session_scope(session_factory) as session:
        session.execute(update(Handoff).values(closed_at=utcnow()))
    with (
        session_scope(session_factory) as session,
        pytest.raises(actions.HandoffError, match="closed"),
    ):
        actions.take_over(session=session, officer=officer(session, alice), handoff_id=handoff_id)


def test_view_is_audited(session_factory: sessionmaker[Session]) -> None:
    conversation_id, _ = queue_conversation(session_factory)
    alice = make_officer(session_factory, "alice@fcdo.test")
    with session_scope(session_factory) as session:
        actions.view(
            session=session, officer=officer(session, alice), conversation_id=conversation_id
        )
    with session_factory() as session:
        assert session.scalars(select(AuditEvent.action)).all() == ["conversation.view"]


def test_the_citizen_is_told_who_joined_and_who_took_over(
    session_factory: sessionmaker[Session],
) -> None:
    _, handoff_id = queue_conversation(session_factory, channel="whatsapp")
    alice = make_officer(session_factory, "alice@fcdo.test")
    bob = make_officer(session_factory, "bob@fcdo.test")
    with session_scope(session_factory) as session:
        handoff = actions.take_over(
            session=session, officer=officer(session, alice), handoff_id=handoff_id
        )
        joined = actions.announce(
            session=session, officer=officer(session, alice), handoff=handoff, joined=True
        )
        passed = actions.announce(
            session=session, officer=officer(session, bob), handoff=handoff, joined=False
        )
        texts = (joined.text, passed.text)
        states = (joined.delivery_state, passed.delivery_state)
    assert "Alice, has joined this conversation" in texts[0]
    assert "passed to another consular officer, Bob" in texts[1]
    assert states == (DeliveryState.QUEUED, DeliveryState.QUEUED)  # through the outbox
