"""The message path, channel-free: store first, decide the owner, ask Rasa, store replies.

Channel adapters call :meth:`ConversationService.accept` with what they
parsed (which stores the message, so they can acknowledge) and then
:meth:`ConversationService.process` (directly for web chat, in the
background for webhooks). Replies to push channels (Telegram, WhatsApp, SMS)
are queued in the outbox in the same transaction that stores them.

After a guidance answer the turn asks "Was this helpful?" (:mod:`bot.guidance.feedback`);
a press of an offered Yes or No is recorded and thanked here, never sent to
Rasa. A citizen's message the assistant could not answer (out of scope, or not
understood) is kept for the guidance admin in the same transaction as the
replies.

Each inbound message is ``received`` until its turn is done (``handled``), or
``held`` while the assistant is down. :meth:`recover_once` finishes turns a
crash interrupted and answers held messages once the assistant is back, so
nothing a citizen sent is lost. Turns of one conversation run one at a time.
Database work runs in worker threads so a slow disk never stalls the loop.

A web chat message arriving while its conversation is idle (the common case)
is stored, and its turn's first step decided, in one transaction: every
session and thread hop on the message path costs CPU the assistant needs.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal, Protocol

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from bot.console import events as console_events
from bot.conversations import store
from bot.conversations.events import EventHub
from bot.conversations.rasa_client import AssistantUnavailable, RasaClient
from bot.conversations.replies import BotReply, reply_json, transcript_json
from bot.db.models import (
    Conversation,
    DeliveryState,
    Direction,
    Handoff,
    Message,
    Owner,
    Sender,
    UnansweredReason,
    utcnow,
)
from bot.db.session import session_scope
from bot.guidance import feedback
from bot.handoff import notice
from bot.outbox import store as outbox

logger = logging.getLogger(__name__)

# The handoff reason used when the assistant itself fails; such a handoff is
# released automatically once the assistant answers again (unless an officer
# has taken the conversation meanwhile).
REASON_ASSISTANT_UNAVAILABLE = "assistant-unavailable"
REASON_URGENT = "urgent"
REASON_BOT_HANDOFF = "bot-handoff"
# The catalogue topic of "I can't help with that" (actions/topics.py OUT_OF_SCOPE).
OUT_OF_SCOPE_TOPIC = "out-of-scope"
OUTCOME_ASSISTANT_RECOVERED = "assistant-recovered"
# Web chat replies travel in the HTTP response and over the websocket; every
# other channel is pushed through the outbox.
PULL_CHANNELS = frozenset({"webchat"})
# How far back a pressed button may have been offered.
RECENT_BUTTON_MESSAGES = 5
ATTACHMENT_NAMES = {
    "photo": "photo",
    "image": "photo",
    "document": "file",
    "file": "file",
    "video": "video",
    "audio": "audio message",
    "voice": "voice message",
    "sticker": "sticker",
}


@dataclass(frozen=True)
class AttachmentIn:
    """Something a citizen sent besides text, as the channel describes it."""

    kind: str
    provider_ref: str
    content_type: str | None = None
    filename: str | None = None
    size_bytes: int | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Accepted:
    """A stored inbound message."""

    conversation_id: str
    message_id: int
    is_new: bool


@dataclass(frozen=True)
class TurnResult:
    """What one citizen message produced."""

    conversation_id: str
    inbound_id: int
    replies: list[dict[str, Any]]
    duplicate: bool


@dataclass(frozen=True)
class _Begun:
    """A web chat message stored under its conversation's lock, and what comes next."""

    accepted: Accepted
    # The new message as a transcript item, to publish once committed (None
    # when it was sent before).
    item: dict[str, Any] | None
    # The turns due (held messages first), and the first one's step.
    due: list[int]
    first: _Step | None


@dataclass(frozen=True)
class _Step:
    """What to do with one inbound message, decided under the conversation's lock."""

    action: str  # "done", "silent", "feedback" or "bot"
    release: bool = False
    rasa_text: str = ""
    citizen_text: str = ""
    attachments: tuple[str, ...] = ()
    choice: feedback.Choice | None = None
    # Words the citizen wrote (``is_question``): kept if the bot cannot answer.
    question: bool = False


class _TurnLock(asyncio.Lock):
    """A conversation's lock that also knows whether anyone is waiting for it.

    ``locked()`` is briefly False while the lock passes to a waiter; a message
    arriving then must not count the conversation as idle.
    """

    def __init__(self) -> None:
        super().__init__()
        self._waiting = 0

    async def acquire(self) -> Literal[True]:
        self._waiting += 1
        try:
            return await super().acquire()
        finally:
            self._waiting -= 1

    def idle(self) -> bool:
        """No turn is running and none is waiting: acquiring now does not wait."""
        return not self.locked() and self._waiting == 0


class ConversationService:
    """Runs citizen turns end to end, for every channel."""

    def __init__(
        self,
        *,
        session_factory: sessionmaker[Session],
        rasa: RasaClient,
        hub: EventHub,
        emergency_phone: str,
        on_queued: Callable[[], None] = lambda: None,
        stale_turn_seconds: float = 30.0,
    ):
        self._sessions = session_factory
        self._rasa = rasa
        self._hub = hub
        self._emergency_phone = emergency_phone
        self._on_queued = on_queued
        self._stale_turn = timedelta(seconds=stale_turn_seconds)
        self._locks: weakref.WeakValueDictionary[str, _TurnLock] = weakref.WeakValueDictionary()
        self._background: set[asyncio.Task[Any]] = set()

    # -- entry points ------------------------------------------------------------

    async def start_conversation(self, *, channel: str) -> str:
        """Creates a conversation with no outside id (web chat) and returns its id."""

        def create() -> str:
            with session_scope(self._sessions) as session:
                return store.create_conversation(session=session, channel=channel).id

        return await run_in_threadpool(create)

    async def accept(
        self,
        *,
        text: str,
        conversation_id: str | None = None,
        channel: str | None = None,
        external_id: str | None = None,
        provider_id: str | None = None,
        rasa_text: str | None = None,
        attachments: Sequence[AttachmentIn] = (),
    ) -> Accepted:
        """Stores an inbound message (once per provider id) before anything acts on it.

        Web chat names its conversation; other channels name themselves and
        the citizen's id there (chat id, phone number), and the conversation
        is found or made. ``rasa_text`` is what the assistant should read
        when it differs from what the citizen sees (a shared location).
        """

        def write() -> tuple[Accepted, dict[str, Any] | None]:
            with session_scope(self._sessions) as session:
                if conversation_id is not None:
                    found = _conversation(session.connection(), conversation_id).id
                else:
                    if channel is None or not external_id:
                        raise ValueError("a channel and the citizen's id there are needed")
                    found = store.get_or_create_conversation(
                        session=session, channel=channel, external_id=external_id
                    ).id
                stored = _store_inbound(
                    session.connection(), found, text, provider_id, rasa_text, attachments
                )
                if isinstance(stored, int):
                    return Accepted(found, stored, False), None
                return Accepted(found, stored.id, True), transcript_json(stored)

        accepted, item = await run_in_threadpool(write)
        if item is not None:
            self._hub.publish(accepted.conversation_id, _event(item))
        return accepted

    async def receive(
        self,
        *,
        conversation_id: str,
        text: str,
        provider_id: str | None = None,
        rasa_text: str | None = None,
    ) -> TurnResult:
        """Stores a web chat message and returns the replies it got (web chat's path).

        While another turn of the conversation runs, the message is stored at
        once and waits for it; otherwise it is stored and its turn begun in
        one transaction under the lock (:meth:`_begin`), committed before the
        assistant is asked.
        """
        lock = self._lock(conversation_id)
        if lock.idle():
            async with lock:
                begun = await run_in_threadpool(
                    self._begin, conversation_id, text, provider_id, rasa_text
                )
                accepted = begun.accepted
                if begun.item is not None:
                    self._hub.publish(conversation_id, _event(begun.item))
                    replies = await self._turns(conversation_id, begun.due, begun.first)
                    return TurnResult(conversation_id, accepted.message_id, replies, False)
        else:
            accepted = await self.accept(
                conversation_id=conversation_id,
                text=text,
                provider_id=provider_id,
                rasa_text=rasa_text,
            )
            if accepted.is_new:
                replies = await self.process(conversation_id, accepted.message_id)
                return TurnResult(conversation_id, accepted.message_id, replies, False)
        # Sent before: its replies, once a concurrent first try has finished its turn.
        async with self._lock(conversation_id):
            replies = await run_in_threadpool(self._stored_replies, accepted.message_id)
        return TurnResult(conversation_id, accepted.message_id, replies, duplicate=True)

    async def offered_button(self, conversation_id: str, payload: str) -> str | None:
        """The title of a button the bot recently offered with this payload, if any.

        Only offered payloads reach the assistant as intents: anything else a
        citizen types starting with "/" is read as words.
        """

        def find() -> str | None:
            with session_scope(self._sessions) as session:
                recent = session.scalars(
                    select(Message)
                    .where(
                        Message.conversation_id == conversation_id,
                        Message.direction == Direction.OUTBOUND,
                    )
                    .order_by(Message.id.desc())
                    .limit(RECENT_BUTTON_MESSAGES)
                ).all()
                for message in recent:
                    for button in (message.payload or {}).get("buttons", []):
                        if button.get("payload") == payload:
                            return str(button.get("title") or payload)
                return None

        return await run_in_threadpool(find)

    async def answer_directly(self, conversation_id: str, message_id: int, text: str) -> bool:
        """Answers a stored message with a fixed system reply instead of a turn.

        For what a channel answers itself (Telegram's /help, "which country is
        that?" for a location at sea). Returns False, changing nothing, when the
        bot does not own the conversation or the message was already handled:
        the caller then runs the turn as for any message.
        """

        def write() -> list[Message]:
            with session_scope(self._sessions) as session:
                connection = session.connection()
                conversation = _conversation(connection, conversation_id)
                inbound = store.inbound_row(connection=connection, message_id=message_id)
                if conversation.owner != Owner.BOT or inbound.state != DeliveryState.RECEIVED:
                    return []
                store.mark_messages(
                    connection=connection, message_ids=[message_id], state=DeliveryState.HANDLED
                )
                return _outbound(connection, conversation, [(BotReply(text=text), Sender.SYSTEM)])

        async with self._lock(conversation_id):
            stored = await run_in_threadpool(write)
        self._publish(conversation_id, stored)
        return bool(stored)

    def process_soon(self, conversation_id: str, message_id: int) -> None:
        """Runs the turn after the webhook has been acknowledged."""
        task = asyncio.create_task(self._process_logged(conversation_id, message_id))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def drain(self) -> None:
        """Waits for background turns (tests, shutdown)."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    async def process(self, conversation_id: str, message_id: int | None) -> list[dict[str, Any]]:
        """Runs the turn for a stored message, first answering any held ones before it.

        Returns the replies stored by this call, in order. ``message_id`` None
        only answers held messages (recovery after an outage).
        """
        async with self._lock(conversation_id):
            ids = await run_in_threadpool(self._due_turns, conversation_id, message_id)
            return await self._turns(conversation_id, ids)

    async def transcript(self, *, conversation_id: str, after: int) -> list[dict[str, Any]]:
        """Messages after ``after``, as transcript items."""

        def read() -> list[dict[str, Any]]:
            with session_scope(self._sessions) as session:
                messages = store.messages_after(
                    session=session, conversation_id=conversation_id, after=after
                )
                return [transcript_json(message) for message in messages]

        return await run_in_threadpool(read)

    async def recover_once(self) -> int:
        """Finishes interrupted turns and answers held messages once the assistant is back.

        Returns how many conversations were worked on.
        """
        stale, held = await run_in_threadpool(self._recoverable)
        worked = 0
        for conversation_id, message_id in stale:
            if self._busy(conversation_id):
                continue
            await self.process(conversation_id, message_id)
            worked += 1
        if held and await self._assistant_up():
            for conversation_id in held:
                if self._busy(conversation_id):
                    continue
                await self.process(conversation_id, None)
                worked += 1
        return worked

    async def run_recovery(self, poll_seconds: float) -> None:
        """Calls :meth:`recover_once` until cancelled."""
        while True:
            try:
                await self.recover_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("recovery pass failed; trying again shortly")
            await asyncio.sleep(poll_seconds)

    # -- one turn -------------------------------------------------------------------

    async def _turns(
        self, conversation_id: str, ids: list[int], first: _Step | None = None
    ) -> list[dict[str, Any]]:
        """Runs the due turns in order (the caller holds the lock); ``first`` is decided."""
        replies: list[dict[str, Any]] = []
        for index, inbound_id in enumerate(ids):
            step = first if index == 0 else None
            produced, stopped = await self._turn(conversation_id, inbound_id, step)
            replies.extend(produced)
            if stopped:
                # The assistant is down: what follows waits with it.
                await run_in_threadpool(self._mark, ids[index + 1 :], DeliveryState.HELD)
                break
        return replies

    async def _turn(
        self, conversation_id: str, inbound_id: int, step: _Step | None = None
    ) -> tuple[list[dict[str, Any]], bool]:
        if step is None:
            step = await run_in_threadpool(self._decide, conversation_id, inbound_id)
        if step.action in ("done", "silent"):
            return [], False
        stored: list[Message] = []
        if step.choice is not None:
            # "Was this helpful?" answered: recorded here, never a turn for Rasa.
            stored += await run_in_threadpool(
                self._answer_feedback, conversation_id, inbound_id, step.choice
            )
            return self._publish(conversation_id, stored), False
        if step.attachments:
            stored += await run_in_threadpool(
                self._acknowledge_attachments, conversation_id, step.attachments
            )
        if step.rasa_text:
            try:
                bot_replies = await self._rasa.send(sender_id=conversation_id, text=step.rasa_text)
            except AssistantUnavailable as exc:
                if step.release:
                    # Still down: already queued, and the citizen already has the
                    # holding reply; do not repeat it.
                    logger.info("assistant still unavailable for %s: %s", conversation_id, exc)
                    await run_in_threadpool(self._mark, [inbound_id], DeliveryState.HELD)
                else:
                    logger.warning("assistant unavailable for %s: %s", conversation_id, exc)
                    stored += await run_in_threadpool(
                        self._hold, conversation_id, inbound_id, step.citizen_text
                    )
                return self._publish(conversation_id, stored), True
            stored += await run_in_threadpool(
                self._store_replies,
                conversation_id,
                inbound_id,
                bot_replies,
                step.citizen_text,
                step.release,
                step.question,
            )
        else:
            await run_in_threadpool(self._mark, [inbound_id], DeliveryState.HANDLED)
        return self._publish(conversation_id, stored), False

    async def _process_logged(self, conversation_id: str, message_id: int) -> None:
        try:
            await self.process(conversation_id, message_id)
        except Exception:
            # The message is stored and still "received": recovery retries it.
            logger.exception("turn for message %s failed; recovery will retry", message_id)

    async def _assistant_up(self) -> bool:
        try:
            await self._rasa.status(wait_seconds=2.0)
        except Exception:  # any failure means "not yet"
            return False
        return True

    def _lock(self, conversation_id: str) -> _TurnLock:
        lock = self._locks.get(conversation_id)
        if lock is None:
            lock = _TurnLock()
            self._locks[conversation_id] = lock
        return lock

    def _busy(self, conversation_id: str) -> bool:
        lock = self._locks.get(conversation_id)
        return lock is not None and lock.locked()

    def _publish(self, conversation_id: str, messages: list[Message]) -> list[dict[str, Any]]:
        """Announces committed replies; returns them in the public ``Reply`` shape.

        Wakes the outbox for any queued ones and tells live subscribers. Each
        transcript item is its reply plus the time (what ``transcript_json``
        makes), built from the reply so a guidance answer's HTML is rendered
        once, not twice.
        """
        if any(message.delivery_state == DeliveryState.QUEUED for message in messages):
            self._on_queued()
        replies = [reply_json(message) for message in messages]
        for message, reply in zip(messages, replies, strict=True):
            item = {**reply, "created_at": message.created_at.isoformat()}
            self._hub.publish(conversation_id, _event(item))
        console_events.publish_handoffs(self._hub, conversation_id, messages)  # console (issue 6)
        return replies

    # -- units of work, each in its own short session ------------------------------

    def _begin(
        self, conversation_id: str, text: str, provider_id: str | None, rasa_text: str | None
    ) -> _Begun:
        """Stores a web chat message, finds the turns due and decides the first, at once.

        Called under the conversation's lock, so no other turn can change
        what is decided here before it is acted on. A message sent before
        (same provider id) is left as it is: its first try answers it.
        """
        with session_scope(self._sessions) as session:
            connection = session.connection()
            conversation = _conversation(connection, conversation_id)
            stored = _store_inbound(connection, conversation_id, text, provider_id, rasa_text)
            if isinstance(stored, int):
                return _Begun(Accepted(conversation_id, stored, False), None, [], None)
            accepted = Accepted(conversation_id, stored.id, True)
            inbound = store.InboundRow(stored.id, text, stored.payload, DeliveryState.RECEIVED)
            due = _due_ids(session, conversation, inbound)
            first = None
            if due:
                if due[0] != inbound.id:
                    inbound = store.inbound_row(connection=connection, message_id=due[0])
                first = _step_for(session, conversation, inbound)
            return _Begun(accepted, transcript_json(stored), due, first)

    def _due_turns(self, conversation_id: str, message_id: int | None) -> list[int]:
        with session_scope(self._sessions) as session:
            connection = session.connection()
            conversation = _conversation(connection, conversation_id)
            inbound = None
            if message_id is not None:
                inbound = store.inbound_row(connection=connection, message_id=message_id)
            return _due_ids(session, conversation, inbound)

    def _decide(self, conversation_id: str, inbound_id: int) -> _Step:
        with session_scope(self._sessions) as session:
            connection = session.connection()
            conversation = _conversation(connection, conversation_id)
            inbound = store.inbound_row(connection=connection, message_id=inbound_id)
            return _step_for(session, conversation, inbound)

    def _stored_replies(self, inbound_id: int) -> list[dict[str, Any]]:
        with session_scope(self._sessions) as session:
            inbound = session.get_one(Message, inbound_id)
            return [reply_json(m) for m in store.replies_to(session=session, inbound=inbound)]

    def _store_replies(
        self,
        conversation_id: str,
        inbound_id: int,
        replies: list[BotReply],
        citizen_text: str,
        release: bool,
        citizen_wrote: bool,
    ) -> list[Message]:
        with session_scope(self._sessions) as session:
            connection = session.connection()
            conversation = _conversation(connection, conversation_id)
            store.mark_messages(
                connection=connection, message_ids=[inbound_id], state=DeliveryState.HANDLED
            )
            # The conversation is about what the latest reply naming a topic
            # (or a country) says. Recorded first: what follows reads it.
            conversation = store.set_topic(
                connection=connection,
                conversation=conversation,
                topic=next((r.topic for r in reversed(replies) if r.topic), None),
                country=next((r.country for r in reversed(replies) if r.country), None),
            )
            if release:
                handoff = store.open_handoff_for(session=session, conversation_id=conversation_id)
                if handoff is not None:
                    store.close_handoff(
                        session=session, handoff=handoff, outcome=OUTCOME_ASSISTANT_RECOVERED
                    )
            outgoing = [(reply, Sender.BOT) for reply in replies]
            revision_id = feedback.revision_to_ask_about(replies)
            if revision_id is not None and not feedback.already_answered(
                session=session, conversation_id=conversation_id, revision_id=revision_id
            ):
                outgoing.append((feedback.question(revision_id), Sender.SYSTEM))
            reason = unanswered_reason(replies)
            if reason is not None and citizen_wrote:
                store.record_unanswered(
                    connection=connection,
                    conversation=conversation,
                    message_id=inbound_id,
                    text=citizen_text,
                    reason=reason,
                )
            wanted = [reply for reply in replies if reply.handoff]
            if wanted:
                # Rare (urgent or asked for): the queue's own functions, on the ORM.
                queued = session.get_one(Conversation, conversation_id)
                urgent = any(reply.urgent for reply in wanted)
                default_reason = REASON_URGENT if urgent else REASON_BOT_HANDOFF
                already = store.open_handoff_for(session=session, conversation_id=conversation_id)
                store.open_handoff(
                    session=session,
                    conversation=queued,
                    reason=wanted[0].handoff_reason or default_reason,
                    urgent=urgent,
                    summary=citizen_text,
                )
                if already is None:
                    # Joining the queue: tell them where they are in it.
                    text = notice.queue_notice(
                        session=session,
                        conversation=queued,
                        emergency_phone=self._emergency_phone,
                    )
                    outgoing.append((BotReply(text=text, handoff=True), Sender.SYSTEM))
            return _outbound(connection, conversation, outgoing)

    def _answer_feedback(
        self, conversation_id: str, inbound_id: int, choice: feedback.Choice
    ) -> list[Message]:
        """Records a Yes or No and thanks the citizen, in one transaction.

        While an officer has (or is about to take) the conversation the answer
        is still recorded, but only the officer speaks to the citizen.
        """
        with session_scope(self._sessions) as session:
            conversation = session.get_one(Conversation, conversation_id)
            store.mark_messages(
                connection=session.connection(),
                message_ids=[inbound_id],
                state=DeliveryState.HANDLED,
            )
            feedback.record(session=session, conversation=conversation, choice=choice)
            if conversation.owner != Owner.BOT:
                return []
            thanks = BotReply(text=feedback.thanks(choice))
            return _outbound(session.connection(), conversation, [(thanks, Sender.SYSTEM)])

    def _hold(self, conversation_id: str, inbound_id: int, citizen_text: str) -> list[Message]:
        with session_scope(self._sessions) as session:
            conversation = session.get_one(Conversation, conversation_id)
            store.mark_messages(
                connection=session.connection(), message_ids=[inbound_id], state=DeliveryState.HELD
            )
            store.open_handoff(
                session=session,
                conversation=conversation,
                reason=REASON_ASSISTANT_UNAVAILABLE,
                urgent=False,
                summary=citizen_text,
            )
            where = notice.queue_notice(
                session=session, conversation=conversation, emergency_phone=self._emergency_phone
            )
            holding = BotReply(
                text=(
                    "Sorry, the assistant is not available right now. Your message has been "
                    f"kept and passed to our consular team. {where}"
                ),
                handoff=True,
            )
            return _outbound(session.connection(), conversation, [(holding, Sender.SYSTEM)])

    def _acknowledge_attachments(
        self, conversation_id: str, kinds: tuple[str, ...]
    ) -> list[Message]:
        names = sorted({ATTACHMENT_NAMES.get(kind, "file") for kind in kinds if kind != "location"})
        if not names:
            return []
        what = " and ".join(names)
        text = (
            f"Thank you, we have received your {what} and kept it safely with this "
            "conversation for a consular officer to see. The assistant cannot read "
            "attachments, so please also tell us in a message what you need help with."
        )
        with session_scope(self._sessions) as session:
            connection = session.connection()
            conversation = _conversation(connection, conversation_id)
            return _outbound(connection, conversation, [(BotReply(text=text), Sender.SYSTEM)])

    def _mark(self, ids: list[int], state: DeliveryState) -> None:
        if not ids:
            return
        with session_scope(self._sessions) as session:
            store.mark_messages(
                connection=session.connection(),
                message_ids=ids,
                state=state,
                only_from=(DeliveryState.RECEIVED, DeliveryState.HELD),
            )

    def _recoverable(self) -> tuple[list[tuple[str, int]], list[str]]:
        with session_scope(self._sessions) as session:
            cutoff = utcnow() - self._stale_turn
            stale = [
                (row.conversation_id, row.id)
                for row in session.execute(
                    select(Message.conversation_id, Message.id)
                    .where(
                        Message.direction == Direction.INBOUND,
                        Message.delivery_state == DeliveryState.RECEIVED,
                        Message.created_at < cutoff,
                    )
                    .order_by(Message.id)
                    .limit(100)
                ).all()
            ]
            held = list(
                session.scalars(
                    select(Message.conversation_id)
                    .join(Handoff, Handoff.conversation_id == Message.conversation_id)
                    .where(
                        Message.direction == Direction.INBOUND,
                        Message.delivery_state == DeliveryState.HELD,
                        Handoff.closed_at.is_(None),
                        Handoff.assigned_at.is_(None),
                        Handoff.reason == REASON_ASSISTANT_UNAVAILABLE,
                    )
                    .distinct()
                    .limit(100)
                ).all()
            )
            return stale, held


def as_words(text: str) -> str:
    """Typed text starting with "/" as plain words: Rasa would read it as an intent."""
    stripped = text.strip()
    if not stripped.startswith("/"):
        return stripped
    return stripped.lstrip("/").strip() or "slash"


def unanswered_reason(replies: Sequence[BotReply]) -> UnansweredReason | None:
    """Why a turn's replies show the assistant could not answer, if they do.

    Actions mark the reply ("out_of_scope" or "misunderstood"); a reply on the
    out-of-scope topic from an action server that does not mark it yet counts
    as out of scope. Urgent turns never count: a person is handling them.
    """
    if any(reply.urgent for reply in replies):
        return None
    for reply in replies:
        if reply.unanswered is not None:
            return UnansweredReason(reply.unanswered)
    if any(reply.topic == OUT_OF_SCOPE_TOPIC for reply in replies):
        return UnansweredReason.OUT_OF_SCOPE
    return None


def is_question(inbound: store.InboundRow) -> bool:
    """Whether the citizen's message is words they wrote (worth keeping when unanswered).

    Not a pressed button or a numbered choice (the assistant read a payload),
    a shared location, or a file sent without a caption.
    """
    if not inbound.text.strip():
        return False
    rasa_text = inbound.payload.get("rasa_text")
    if isinstance(rasa_text, str) and rasa_text.startswith("/"):
        return False
    return "location" not in inbound.kinds


class _Addressee(Protocol):
    """Where replies go: a conversation, as a row or as loaded by the ORM."""

    @property
    def id(self) -> str: ...
    @property
    def channel(self) -> str: ...
    @property
    def external_id(self) -> str: ...


def _outbound(
    connection: Connection, conversation: _Addressee, replies: Sequence[tuple[BotReply, Sender]]
) -> list[Message]:
    """Stores replies in order; for a push channel they are queued in the same transaction."""
    pull = conversation.channel in PULL_CHANNELS
    state = DeliveryState.DELIVERED if pull else DeliveryState.QUEUED
    stored = store.insert_outbound(
        connection=connection,
        conversation_id=conversation.id,
        messages=[
            store.NewMessage(text=reply.text, sender=sender, payload=reply.payload(), state=state)
            for reply, sender in replies
        ],
    )
    if not pull:
        outbox.enqueue_ids(
            connection=connection,
            message_ids=[message.id for message in stored],
            channel=conversation.channel,
            recipient=conversation.external_id,
        )
    return stored


def _conversation(connection: Connection, conversation_id: str) -> store.ConversationRow:
    conversation = store.conversation_row(connection=connection, conversation_id=conversation_id)
    if conversation is None:
        raise LookupError(f"no conversation {conversation_id}")
    return conversation


def _store_inbound(
    connection: Connection,
    conversation_id: str,
    text: str,
    provider_id: str | None,
    rasa_text: str | None,
    attachments: Sequence[AttachmentIn] = (),
) -> Message | int:
    """Stores the citizen's message with what came with it; the earlier id if sent before."""
    return store.insert_inbound(
        connection=connection,
        conversation_id=conversation_id,
        text=text,
        provider_id=provider_id,
        payload={"rasa_text": rasa_text} if rasa_text is not None else {},
        attachments=[
            {
                "kind": attachment.kind,
                "provider_ref": attachment.provider_ref,
                "content_type": attachment.content_type,
                "filename": attachment.filename,
                "size_bytes": attachment.size_bytes,
                "details": attachment.details,
            }
            for attachment in attachments
        ],
    )


def _due_ids(
    session: Session, conversation: store.ConversationRow, inbound: store.InboundRow | None
) -> list[int]:
    """Held messages first (when the assistant may answer them), then this one."""
    ids: list[int] = []
    if _releasable(session, conversation):
        ids = list(
            session.connection()
            .execute(
                select(Message.id)
                .where(
                    Message.conversation_id == conversation.id,
                    Message.direction == Direction.INBOUND,
                    Message.delivery_state == DeliveryState.HELD,
                )
                .order_by(Message.id)
            )
            .scalars()
            .all()
        )
    if inbound is not None and inbound.id not in ids and inbound.state == DeliveryState.RECEIVED:
        ids.append(inbound.id)
    return ids


def _step_for(
    session: Session, conversation: store.ConversationRow, inbound: store.InboundRow
) -> _Step:
    """What to do with one inbound message; marks it handled when the bot stays silent."""
    if inbound.state not in (DeliveryState.RECEIVED, DeliveryState.HELD):
        return _Step("done")
    rasa_text = inbound.payload.get("rasa_text")
    if isinstance(rasa_text, str) and feedback.is_feedback_payload(rasa_text):
        choice = feedback.parse_payload(rasa_text)
        if choice is not None and feedback.was_offered(
            session=session, conversation_id=conversation.id, payload=rasa_text
        ):
            return _Step("feedback", choice=choice)
        # Not a button we showed here: the words, never an intent.
        logger.info("feedback payload not offered in %s; read as words", conversation.id)
        rasa_text = as_words(rasa_text)
    release = _releasable(session, conversation)
    if conversation.owner != Owner.BOT and not release:
        # An officer owns it (or will): the bot stays silent; the console
        # shows the message. A number sent while waiting is kept as callback
        # details for the next officer.
        store.mark_messages(
            connection=session.connection(),
            message_ids=[inbound.id],
            state=DeliveryState.HANDLED,
        )
        handoff = store.open_handoff_for(session=session, conversation_id=conversation.id)
        if handoff is not None:
            notice.capture_callback(handoff=handoff, text=inbound.text)
        return _Step("silent")
    return _Step(
        "bot",
        release=release,
        rasa_text=rasa_text if isinstance(rasa_text, str) else inbound.text.strip(),
        citizen_text=inbound.text,
        attachments=inbound.kinds,
        question=is_question(inbound),
    )


def _releasable(session: Session, conversation: store.ConversationRow) -> bool:
    """Queued only because the assistant failed, and no officer has taken it."""
    if conversation.owner != Owner.QUEUE:
        return False
    handoff = store.open_handoff_for(session=session, conversation_id=conversation.id)
    return (
        handoff is not None
        and handoff.reason == REASON_ASSISTANT_UNAVAILABLE
        and handoff.assigned_at is None
    )


def _event(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "message", "message": item}
