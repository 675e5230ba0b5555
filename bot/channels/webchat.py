"""The public web chat API: sessions, messages, transcript and a live websocket."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, WebSocket, status
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from pydantic import BaseModel, Field, field_validator
from starlette.websockets import WebSocketDisconnect

from bot.conversations.service import ConversationService, as_words
from bot.core.config import Settings
from bot.guidance.feedback import is_feedback_payload

logger = logging.getLogger(__name__)

CHANNEL = "webchat"
TOKEN_SALT = "webchat-session"
CLIENT_MESSAGE_ID_LENGTH = 64
PAYLOAD_LENGTH = 200
POLICY_VIOLATION = 1008

router = APIRouter(prefix="/api/webchat", tags=["web chat"])


class SessionOut(BaseModel):
    """A new web chat session and the bearer token that proves it."""

    session_id: str
    token: str


class MessageIn(BaseModel):
    """What the citizen typed (or the payload of a button they pressed)."""

    text: str = Field(min_length=1)
    # A pressed button's payload (text is then its title); it must be one the
    # bot offered in this conversation.
    payload: str | None = Field(default=None, max_length=PAYLOAD_LENGTH)
    client_message_id: str | None = Field(default=None, max_length=CLIENT_MESSAGE_ID_LENGTH)

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("Enter a message")
        return value


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _service(request: Request) -> ConversationService:
    service: ConversationService = request.app.state.conversations
    return service


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.webchat_secret, salt=TOKEN_SALT)


def issue_token(settings: Settings, session_id: str) -> str:
    """A signed, expiring token bound to one session."""
    return _serializer(settings).dumps(session_id)


def verify_token(settings: Settings, session_id: str, token: str) -> bool:
    """True when ``token`` was issued for ``session_id`` and has not expired."""
    try:
        signed_id = _serializer(settings).loads(
            token, max_age=settings.webchat_token_max_age_seconds
        )
    except (SignatureExpired, BadSignature):
        return False
    return isinstance(signed_id, str) and signed_id == session_id


def _bearer(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="Send the session token as 'Authorization: Bearer <token>'.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return token.strip()


async def authorised_session(
    session_id: str,
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
) -> str:
    """The session id, once the bearer token proves the caller owns it.

    Async although it awaits nothing: checking a signature takes microseconds,
    and FastAPI would run a plain function in a worker thread, a hop that costs
    more than the check on every message.
    """
    if not verify_token(_settings(request), session_id, _bearer(authorization)):
        # The same answer for a wrong, expired or foreign token: nothing to probe.
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="This chat session has expired or is not yours. Start a new chat.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return session_id


SessionId = Annotated[str, Depends(authorised_session)]


@router.post("/sessions", status_code=status.HTTP_201_CREATED)
async def create_session(request: Request) -> SessionOut:
    """Starts a conversation on the web chat channel."""
    client = request.client.host if request.client else None
    request.app.state.rate_limiter.enforce(endpoint="webchat-sessions", sender=client)
    session_id = await _service(request).start_conversation(channel=CHANNEL)
    return SessionOut(session_id=session_id, token=issue_token(_settings(request), session_id))


@router.post("/sessions/{session_id}/messages")
async def post_message(
    session_id: SessionId, body: MessageIn, request: Request
) -> dict[str, list[dict[str, Any]]]:
    """Stores the message and returns the bot's replies to it."""
    settings = _settings(request)
    request.app.state.rate_limiter.enforce(endpoint="webchat-messages", sender=session_id)
    if len(body.text) > settings.webchat_max_text_length:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_ENTITY,
            detail=f"Messages can be at most {settings.webchat_max_text_length} characters.",
        )
    service = _service(request)
    text, rasa_text = body.text, None
    if body.payload is not None:
        title = await service.offered_button(session_id, body.payload)
        if title is None:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                detail="That option is no longer available. Please type your question instead.",
            )
        text, rasa_text = title, body.payload
    elif body.text.startswith("/"):
        # A button payload sent as text is honoured only if the bot offered it;
        # anything else typed with a leading "/" is read as words, not an intent.
        # "Was this helpful?" counts only as a pressed button, never as typed text.
        offered = None
        if not is_feedback_payload(body.text):
            offered = await service.offered_button(session_id, body.text)
        rasa_text = body.text if offered is not None else as_words(body.text)
    try:
        turn = await service.receive(
            conversation_id=session_id,
            text=text,
            provider_id=body.client_message_id,
            rasa_text=rasa_text,
        )
    except LookupError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="No such chat session.") from exc
    return {"replies": turn.replies}


@router.get("/sessions/{session_id}/messages")
async def get_messages(
    session_id: SessionId,
    request: Request,
    after: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, list[dict[str, Any]]]:
    """The transcript after a message id (0 for all), for reloads and reconnects."""
    messages = await _service(request).transcript(conversation_id=session_id, after=after)
    return {"messages": messages}


@router.websocket("/sessions/{session_id}/ws")
async def live(websocket: WebSocket, session_id: str, token: str = "") -> None:
    """Pushes every later message of the conversation as it is stored."""
    settings: Settings = websocket.app.state.settings
    if not verify_token(settings, session_id, token):
        await websocket.close(code=POLICY_VIOLATION, reason="invalid or expired token")
        return
    await websocket.accept()
    hub = websocket.app.state.hub
    async with hub.subscribe(session_id) as queue:
        receiver = asyncio.create_task(_drain(websocket))
        try:
            while not receiver.done():
                getter = asyncio.create_task(queue.get())
                done, _ = await asyncio.wait(
                    {getter, receiver}, return_when=asyncio.FIRST_COMPLETED
                )
                if getter in done:
                    await websocket.send_json(getter.result())
                else:
                    getter.cancel()
        except (WebSocketDisconnect, RuntimeError):
            logger.debug("web chat socket for %s closed", session_id)
        finally:
            receiver.cancel()


async def _drain(websocket: WebSocket) -> None:
    # The client sends nothing we act on; reading notices the disconnect.
    try:
        while True:
            await websocket.receive_text()
    except WebSocketDisconnect:
        return
