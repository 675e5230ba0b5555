"""The audit log: who did what, when. Written in the same unit of work as the change."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from bot.db.models import AuditEvent


def record(
    *,
    session: Session,
    actor: str,
    action: str,
    subject: str = "",
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Adds one audit event (no personal data in ``details``)."""
    event = AuditEvent(actor=actor, action=action, subject=subject, details=details or {})
    session.add(event)
    session.flush()
    return event
