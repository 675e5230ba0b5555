"""The identity check for case status: equal answers for every mismatch, and a lock.

A lookup succeeds only with a known reference and both facts matching. A
wrong reference and a wrong fact take the same path and give the same
result, and failures are counted per reference even when no case has it,
so neither the answer nor the lock reveals which references exist.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import audit
from bot.cases.identity import (
    birth_date_digest,
    normalise_reference,
    reference_digest,
    surname_digest,
)
from bot.db.models import Case, CaseLookupLock, utcnow

ACTOR = "assistant"
# Compared against when no case has the reference, so both paths do the same work.
_ABSENT = "0" * 64


class Outcome(StrEnum):
    """The only three answers a lookup can give."""

    VERIFIED = "verified"
    NOT_VERIFIED = "not_verified"
    LOCKED = "locked"


@dataclass(frozen=True)
class CaseStatus:
    """What may be disclosed after a successful check: status and next step only."""

    reference: str
    status: str
    next_step: str
    updated_at: datetime


@dataclass(frozen=True)
class LookupResult:
    """The result of one identity check."""

    outcome: Outcome
    case: CaseStatus | None = None
    locked_minutes: int | None = None


@dataclass(frozen=True)
class LockPolicy:
    """How many failures lock a reference, and for how long."""

    max_failures: int = 3
    lock_minutes: int = 15


def verify_case(
    *,
    session: Session,
    key: str,
    reference: str,
    surname: str,
    born: date,
    conversation_id: str | None = None,
    policy: LockPolicy | None = None,
    now: datetime | None = None,
) -> LookupResult:
    """Checks the facts; returns the case's status only when all of them match."""
    policy = policy or LockPolicy()
    now = now or utcnow()
    normalised = normalise_reference(reference) or reference.strip().upper()
    lock = _lock_row(session=session, key=key, reference=normalised)
    if lock.locked_until is not None and _aware(lock.locked_until) > now:
        return LookupResult(Outcome.LOCKED, locked_minutes=policy.lock_minutes)

    case = session.scalars(select(Case).where(Case.reference == normalised)).one_or_none()
    surname_ok = hmac.compare_digest(
        case.surname_hash if case else _ABSENT, surname_digest(key, surname)
    )
    born_ok = hmac.compare_digest(
        case.date_of_birth_hash if case else _ABSENT, birth_date_digest(key, born)
    )
    if case is not None and surname_ok and born_ok:
        lock.failures = 0
        lock.first_failure_at = None
        lock.locked_until = None
        audit.record(
            session=session,
            actor=ACTOR,
            action="case.lookup.verified",
            subject=normalised,
            details={"conversation_id": conversation_id},
        )
        return LookupResult(
            Outcome.VERIFIED,
            case=CaseStatus(case.reference, case.status, case.next_step, case.updated_at),
        )

    window = timedelta(minutes=policy.lock_minutes)
    if lock.first_failure_at is None or now - _aware(lock.first_failure_at) > window:
        lock.failures = 0
        lock.first_failure_at = now
    lock.failures += 1
    if lock.failures >= policy.max_failures:
        lock.locked_until = now + window
        lock.failures = 0
        lock.first_failure_at = None
        # The reference as typed is what an investigator needs; it is not
        # evidence that a case exists.
        audit.record(
            session=session,
            actor=ACTOR,
            action="case.lookup.locked",
            subject=normalised,
            details={"conversation_id": conversation_id, "lock_minutes": policy.lock_minutes},
        )
        return LookupResult(Outcome.LOCKED, locked_minutes=policy.lock_minutes)
    return LookupResult(Outcome.NOT_VERIFIED)


def _lock_row(*, session: Session, key: str, reference: str) -> CaseLookupLock:
    digest = reference_digest(key, reference)
    row = session.get(CaseLookupLock, digest)
    if row is None:
        row = CaseLookupLock(reference_hash=digest, failures=0)
        session.add(row)
        session.flush()
    return row


def _aware(moment: datetime) -> datetime:
    # SQLite returns naive datetimes even for timezone-aware columns.

    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
