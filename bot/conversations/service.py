"""The message path, channel-free: store first, decide the owner, ask Rasa, store replies.

Channel adapters call :meth:`ConversationService.receive` with what they parsed
and deliver what it returns. Database work runs in worker threads so a slow
disk never stalls the event loop.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from bot.conversations import store
from bot.conversations.events import EventHub
from bot.conversations.rasa_client import AssistantUnavailable, RasaClient
from bot.conversations.replies import BotReply, reply_json, transcript_json
from bot.db.models import Conversation, Message, Owner, Sender
from bot.db.session import session_scope

logger = logging.getLogger(__name__)

# The handoff reason used when the assistant itself fails; such a handoff is
# released automatically once the assistant answers again (unless an officer
# has taken the conversation meanwhile).
REASON_ASSISTANT_UNAVAILABLE = "assistant-unavailable"
REASON_URGENT = "urgent"
REASON_BOT_HANDOFF = "bot-handoff"
OUTCOME_ASSISTANT_RECOVERED = "assistant-recovered"


@dataclass(frozen=True)
class TurnResult:
    """What one citizen message produced."""

    conversation_id: str
    inbound_id: int
    replies: list[dict[str, Any]]
    duplicate: bool


class ConversationService:
    """Runs one citizen turn end to end."""

    def __init__(
        self,
        *,
        session_factory: sessionmaker[Session],
        rasa: RasaClient,
        hub: EventHub,
        emergency_phone: str,
    ):
        self._sessions = session_factory
        self._rasa = rasa
        self._hub = hub
        self._emergency_phone = emergency_phone

    async def start_conversation(self, *, channel: str) -> str:
        """Creates a conversation with no outside id (web chat) and returns its id."""

        def create() -> str:
            with session_scope(self._sessions) as session:
                return store.create_conversation(session=session, channel=channel).id

        return await run_in_threadpool(create)

    async def receive(
        self,
        *,
        conversation_id: str,
        text: str,
        provider_id: str | None = None,
    ) -> TurnResult:
        """Stores a citizen message, gets the bot's replies when the bot owns the thread."""
        inbound, is_new, owner, release = await run_in_threadpool(
            self._store_inbound, conversation_id, text, provider_id
        )
        if not is_new:
            replies = await run_in_threadpool(self._stored_replies, inbound.id)
            return TurnResult(conversation_id, inbound.id, replies, duplicate=True)
        self._hub.publish(conversation_id, _event(transcript_json(inbound)))

        if owner != Owner.BOT and not release:
            # An officer owns it (or will): the bot stays silent.
            return TurnResult(conversation_id, inbound.id, [], duplicate=False)

        try:
            bot_replies = await self._rasa.send(sender_id=conversation_id, text=text)
        except AssistantUnavailable as exc:
            if release:
                # Still down: the conversation is already queued and the citizen
                # already has the holding reply; do not repeat it.
                logger.info("assistant still unavailable for %s: %s", conversation_id, exc)
                return TurnResult(conversation_id, inbound.id, [], duplicate=False)
            logger.warning("assistant unavailable for %s: %s", conversation_id, exc)
            stored = await run_in_threadpool(self._hold, conversation_id, text)
        else:
            stored = await run_in_threadpool(
                self._store_replies, conversation_id, bot_replies, text, release
            )
        replies = [reply_json(message) for message in stored]
        for message in stored:
            self._hub.publish(conversation_id, _event(transcript_json(message)))
        return TurnResult(conversation_id, inbound.id, replies, duplicate=False)

    async def transcript(self, *, conversation_id: str, after: int) -> list[dict[str, Any]]:
        """Messages after ``after``, as transcript items."""

        def read() -> list[dict[str, Any]]:
            with session_scope(self._sessions) as session:
                messages = store.messages_after(
                    session=session, conversation_id=conversation_id, after=after
                )
                return [transcript_json(message) for message in messages]

        return await run_in_threadpool(read)

    # -- units of work, each in its own short session ------------------------

    def _store_inbound(
        self, conversation_id: str, text: str, provider_id: str | None
    ) -> tuple[Message, bool, Owner, bool]:
        with session_scope(self._sessions) as session:
            conversation = session.get(Conversation, conversation_id)
            if conversation is None:
                raise LookupError(f"no conversation {conversation_id}")
            inbound, is_new = store.store_inbound(
                session=session,
                conversation_id=conversation_id,
                text=text,
                provider_id=provider_id,
            )
            release = False
            if conversation.owner == Owner.QUEUE:
                handoff = store.open_handoff_for(session=session, conversation_id=conversation_id)
                release = (
                    handoff is not None
                    and handoff.reason == REASON_ASSISTANT_UNAVAILABLE
                    and handoff.assigned_at is None
                )
            return inbound, is_new, conversation.owner, release

    def _stored_replies(self, inbound_id: int) -> list[dict[str, Any]]:
        with session_scope(self._sessions) as session:
            inbound = session.get(Message, inbound_id)
            assert inbound is not None
            return [reply_json(m) for m in store.replies_to(session=session, inbound=inbound)]

    def _store_replies(
        self, conversation_id: str, replies: list[BotReply], citizen_text: str, release: bool
    ) -> list[Message]:
        with session_scope(self._sessions) as session:
            conversation = session.get(Conversation, conversation_id)
            assert conversation is not None
            if release:
                handoff = store.open_handoff_for(session=session, conversation_id=conversation_id)
                if handoff is not None:
                    store.close_handoff(
                        session=session, handoff=handoff, outcome=OUTCOME_ASSISTANT_RECOVERED
                    )
            stored = []
            for reply in replies:
                if reply.topic:
                    conversation.topic = reply.topic
                if reply.country:
                    conversation.country = reply.country
                stored.append(
                    store.store_outbound(
                        session=session, conversation_id=conversation_id, reply=reply
                    )
                )
            wanted = [reply for reply in replies if reply.handoff]
            if wanted:
                urgent = any(reply.urgent for reply in wanted)
                default_reason = REASON_URGENT if urgent else REASON_BOT_HANDOFF
                store.open_handoff(
                    session=session,
                    conversation=conversation,
                    reason=wanted[0].handoff_reason or default_reason,
                    urgent=urgent,
                    summary=citizen_text,
                )
            return stored

    def _hold(self, conversation_id: str, citizen_text: str) -> list[Message]:
        holding = BotReply(
            text=(
                "Sorry, the assistant is not available right now. Your message has been "
                "kept and passed to our consular team, and an officer will reply here. "
                f"If you need urgent help, call the 24-hour consular line on "
                f"{self._emergency_phone}."
            ),
            handoff=True,
        )
        with session_scope(self._sessions) as session:
            conversation = session.get(Conversation, conversation_id)
            assert conversation is not None
            message = store.store_outbound(
                session=session,
                conversation_id=conversation_id,
                reply=holding,
                sender=Sender.SYSTEM,
            )
            store.open_handoff(
                session=session,
                conversation=conversation,
                reason=REASON_ASSISTANT_UNAVAILABLE,
                urgent=False,
                summary=citizen_text,
            )
            return [message]


def _event(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "message", "message": item}
