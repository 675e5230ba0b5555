"""Case status behind the identity check (SERVICE_CATALOGUE.md, "Identity check")."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from bot.api.deps import SessionDep
from bot.cases.verify import LockPolicy, verify_case
from bot.core.config import Settings

router = APIRouter()


class CaseLookupIn(BaseModel):
    """The facts the citizen gave; the date is already parsed by the action."""

    reference: str = Field(min_length=1, max_length=64)
    surname: str = Field(min_length=1, max_length=120)
    date_of_birth: date
    conversation_id: str | None = Field(default=None, max_length=36)


@router.post("/cases/verify")
def verify(body: CaseLookupIn, session: SessionDep, request: Request) -> dict[str, Any]:
    """``verified`` with status and next step, ``not_verified``, or ``locked``."""
    settings: Settings = request.app.state.settings
    result = verify_case(
        session=session,
        key=settings.case_fact_key,
        reference=body.reference,
        surname=body.surname,
        born=body.date_of_birth,
        conversation_id=body.conversation_id,
        policy=LockPolicy(settings.case_max_failures, settings.case_lock_minutes),
    )
    case = None
    if result.case is not None:
        case = {
            "reference": result.case.reference,
            "status": result.case.status,
            "next_step": result.case.next_step,
            "updated_at": result.case.updated_at.isoformat(),
        }
    return {"outcome": result.outcome.value, "case": case, "locked_minutes": result.locked_minutes}
