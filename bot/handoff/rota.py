"""Who is on duty now, from weekly shifts kept in each officer's own time zone.

Follow the sun: an officer in Canberra and one in London each write their
shifts in local time; the rota turns "now" into each officer's local day
and clock, so a shift that crosses midnight, or a daylight-saving change,
needs nothing special.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from bot.db.models import Officer, OfficerRole, Presence, Shift


def shift_covers(shift: Shift, local: datetime) -> bool:
    """True when the local moment falls inside the shift (which may run past midnight)."""
    return _covers(shift.weekday, shift.starts, shift.ends, local)


def _covers(weekday: int, starts: time, ends: time, local: datetime) -> bool:
    clock = local.time().replace(tzinfo=None)
    if starts < ends:
        return local.weekday() == weekday and starts <= clock < ends
    # Runs overnight (or all day when starts == ends): the evening part on its
    # own weekday, the morning part on the next.
    if local.weekday() == weekday and clock >= starts:
        return True
    yesterday = (local - timedelta(days=1)).weekday()
    return yesterday == weekday and clock < ends


def local_time(officer: Officer, now: datetime) -> datetime:
    """``now`` on the officer's own clock (UTC when the zone is unknown)."""
    try:
        zone = ZoneInfo(officer.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return now.astimezone(zone)


def on_duty(officers: Iterable[Officer], now: datetime) -> list[Officer]:
    """The active officers whose shift covers ``now`` (an aware datetime)."""
    return [
        officer
        for officer in officers
        if officer.active
        and any(shift_covers(shift, local_time(officer, now)) for shift in officer.shifts)
    ]


def on_call_supervisors(officers: Iterable[Officer], now: datetime) -> list[Officer]:
    """Supervisors (or admins) on an on-call shift now, with a phone to page."""
    found = []
    for officer in officers:
        if not officer.active or officer.role == OfficerRole.OFFICER or not officer.phone:
            continue
        local = local_time(officer, now)
        if any(shift.on_call and shift_covers(shift, local) for shift in officer.shifts):
            found.append(officer)
    return found


def load_officers(session: Session) -> list[Officer]:
    """Every active officer with their shifts."""
    return list(
        session.scalars(
            select(Officer).where(Officer.active.is_(True)).options(selectinload(Officer.shifts))
        ).all()
    )


def available(officers: Iterable[Officer], now: datetime) -> list[Officer]:
    """On duty and online at the console now."""
    return [officer for officer in on_duty(officers, now) if officer.presence == Presence.ONLINE]


def gaps(officers: Iterable[Officer], start: datetime, days: int = 7) -> list[datetime]:
    """Hours in the coming ``days`` that nobody's shift covers (to fix the rota)."""
    officers = list(officers)
    hour = start.replace(minute=0, second=0, microsecond=0)
    return [
        moment
        for moment in (hour + timedelta(hours=step) for step in range(days * 24))
        if not on_duty(officers, moment)
    ]


def gap_ranges(uncovered: list[datetime]) -> list[tuple[datetime, datetime]]:
    """Consecutive uncovered hours joined into (start, end) ranges."""
    ranges: list[tuple[datetime, datetime]] = []
    for hour in uncovered:
        if ranges and ranges[-1][1] == hour:
            ranges[-1] = (ranges[-1][0], hour + timedelta(hours=1))
        else:
            ranges.append((hour, hour + timedelta(hours=1)))
    return ranges


def coverage_report(officers: Iterable[Officer], now: datetime, days: int = 7) -> list[str]:
    """Who is on duty now, and every hour of the coming week nobody covers (UTC)."""
    officers = list(officers)
    lines = []
    duty = on_duty(officers, now)
    names = ", ".join(sorted(officer.name for officer in duty)) or "nobody"
    lines.append(f"on duty now ({now:%a %H:%M} UTC): {names}")
    ranges = gap_ranges(gaps(officers, now, days))
    if not ranges:
        lines.append(f"the rota covers every hour of the next {days} days")
    for start, end in ranges:
        lines.append(f"GAP: nobody on duty {start:%a %d %b %H:%M} to {end:%a %d %b %H:%M} UTC")
    return lines
