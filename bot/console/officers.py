"""Officer accounts and shifts, as the ``bot officers`` command writes them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import audit
from bot.console import auth
from bot.db.models import Officer, OfficerRole, Shift

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
PHONE = re.compile(r"^\+[1-9]\d{6,14}$")


class OfficerError(ValueError):
    """Input the command refuses; the message says why."""


@dataclass(frozen=True)
class NewOfficer:
    """A created account and its TOTP secret, shown once."""

    officer_id: int
    email: str
    totp_secret: str
    provisioning_uri: str


def add_officer(
    *,
    session: Session,
    email: str,
    name: str,
    role: str,
    timezone: str,
    password: str,
    phone: str | None = None,
    totp_secret: str | None = None,
    actor: str = "cli",
) -> NewOfficer:
    """Creates an officer with an argon2 password hash and a fresh TOTP secret."""
    email = email.strip().lower()
    if not EMAIL.match(email):
        raise OfficerError(f"not an email address: {email!r}")
    if not name.strip():
        raise OfficerError("a name is needed")
    try:
        officer_role = OfficerRole(role)
    except ValueError as exc:
        raise OfficerError(
            f"role must be one of {', '.join(r.value for r in OfficerRole)}"
        ) from exc
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise OfficerError(f"not an IANA time zone: {timezone!r}") from exc
    if phone is not None and not PHONE.match(phone.replace(" ", "")):
        raise OfficerError("the phone number must be in international form, e.g. +447700900123")
    if len(password) < auth.MIN_PASSWORD_LENGTH:
        raise OfficerError(f"the password needs at least {auth.MIN_PASSWORD_LENGTH} characters")
    if auth.find_officer(session=session, email=email) is not None:
        raise OfficerError(f"there is already an officer {email}")
    secret = totp_secret or auth.new_totp_secret()
    officer = Officer(
        email=email,
        name=name.strip(),
        role=officer_role,
        timezone=timezone,
        phone=phone.replace(" ", "") if phone else None,
        password_hash=auth.hash_password(password),
        totp_secret=secret,
    )
    session.add(officer)
    session.flush()
    audit.record(
        session=session,
        actor=actor,
        action="officer.add",
        subject=email,
        details={"role": officer_role.value},
    )
    return NewOfficer(
        officer_id=officer.id,
        email=email,
        totp_secret=secret,
        provisioning_uri=auth.provisioning_uri(email=email, secret=secret),
    )


def weekdays(spec: str) -> list[int]:
    """``mon``, ``monday``, ``0``..``6``, ``daily``/``all``, or a comma list of those."""
    days: list[int] = []
    for part in (piece.strip().lower() for piece in spec.split(",")):
        if part in ("daily", "all", "every"):
            days.extend(range(7))
        elif part.isdigit() and 0 <= int(part) <= 6:
            days.append(int(part))
        else:
            matches = [index for index, day in enumerate(WEEKDAYS) if day.startswith(part)]
            if len(part) < 2 or len(matches) != 1:
                raise OfficerError(f"not a weekday: {part!r}")
            days.append(matches[0])
    return sorted(set(days))


def clock(text: str) -> time:
    """``HH:MM`` as a time of day."""
    try:
        hours, minutes = text.strip().split(":")
        return time(int(hours), int(minutes))
    except ValueError as exc:
        raise OfficerError(f"not a time of day (HH:MM): {text!r}") from exc


def add_shifts(
    *,
    session: Session,
    email: str,
    days: list[int],
    starts: time,
    ends: time,
    on_call: bool = False,
    actor: str = "cli",
) -> list[Shift]:
    """Weekly shifts in the officer's own time zone (``ends <= starts`` runs past midnight)."""
    officer = auth.find_officer(session=session, email=email)
    if officer is None:
        raise OfficerError(f"there is no officer {email.strip().lower()}")
    shifts = [
        Shift(officer_id=officer.id, weekday=day, starts=starts, ends=ends, on_call=on_call)
        for day in days
    ]
    session.add_all(shifts)
    session.flush()
    audit.record(
        session=session,
        actor=actor,
        action="officer.shift_add",
        subject=officer.email,
        details={
            "weekdays": days,
            "starts": starts.isoformat("minutes"),
            "ends": ends.isoformat("minutes"),
            "on_call": on_call,
        },
    )
    return shifts


def listing(session: Session) -> list[str]:
    """One line per officer: email, name, role, zone, presence, shift count."""
    officers = session.scalars(select(Officer).order_by(Officer.email)).all()
    lines = []
    for o in officers:
        state = "" if o.active else "\t(inactive)"
        lines.append(
            f"{o.email}\t{o.name}\t{o.role.value}\t{o.timezone}\t{o.presence.value}\t"
            f"{len(o.shifts)} shift(s){state}"
        )
    return lines
