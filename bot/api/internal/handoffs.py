"""Queue a conversation for a duty officer on behalf of an action."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, Field

from bot.api.deps import SessionDep
from bot.conversations import store
from bot.db.models import Conversation

router = APIRouter()


class HandoffIn(BaseModel):
    """Why the conversation needs an officer."""

    conversation_id: str = Field(min_length=1, max_length=36)
    reason: str = Field(min_length=1, max_length=48, pattern=r"^[a-z][a-z0-9-]*$")
    urgent: bool = False
    summary: str = Field(default="", max_length=2000)


@router.post("/handoffs", status_code=status.HTTP_201_CREATED)
def create_handoff(body: HandoffIn, session: SessionDep) -> dict[str, Any]:
    """Puts the conversation in the officers' queue (once: an open entry is reused)."""
    conversation = session.get(Conversation, body.conversation_id)
    if conversation is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="no such conversation")
    handoff = store.open_handoff(
        session=session,
        conversation=conversation,
        reason=body.reason,
        urgent=body.urgent,
        summary=body.summary,
    )
    return {"handoff_id": handoff.id, "priority": handoff.priority, "reason": handoff.reason}
