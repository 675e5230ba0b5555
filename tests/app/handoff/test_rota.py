"""The duty rota across time zones: shifts in local time, overnight shifts, DST, gaps."""

from __future__ import annotations

from datetime import UTC, datetime, time

from bot.db.models import Officer, OfficerRole, Presence, Shift
from bot.handoff.rota import available, gaps, on_call_supervisors, on_duty

WEEKDAYS = range(7)


def officer(name: str, zone: str, shifts: list[tuple[int, time, time]], **extra: object) -> Officer:
    person = Officer(
        email=f"{name}@example.test",
        name=name,
        timezone=zone,
        active=True,
        role=extra.pop("role", OfficerRole.OFFICER),
        presence=extra.pop("presence", Presence.ONLINE),
        phone=extra.pop("phone", None),
    )
    on_call = bool(extra.pop("on_call", False))
    person.shifts = [
        Shift(weekday=day, starts=start, ends=end, on_call=on_call) for day, start, end in shifts
    ]
    return person


def office_hours(name: str, zone: str, **extra: object) -> Officer:
    """Monday to Friday, 08:00 to 16:00 local."""
    return officer(name, zone, [(day, time(8), time(16)) for day in range(5)], **extra)


# Follow the sun: Canberra, London and Washington office hours cover the day.
CANBERRA = office_hours("canberra", "Australia/Sydney")
LONDON = office_hours("london", "Europe/London")
WASHINGTON = office_hours("washington", "America/New_York")
NETWORK = [CANBERRA, LONDON, WASHINGTON]


def names(officers: list[Officer]) -> list[str]:
    return sorted(person.name for person in officers)


def test_each_officers_shift_is_read_on_their_own_clock() -> None:
    # Tuesday 2026-12-01 09:00 UTC: London 09:00 (on), Sydney 20:00 (off),
    # New York 04:00 (off).
    assert names(on_duty(NETWORK, datetime(2026, 12, 1, 9, tzinfo=UTC))) == ["london"]
    # Tuesday 22:00 UTC is Wednesday 09:00 in Sydney.
    assert names(on_duty(NETWORK, datetime(2026, 12, 1, 22, tzinfo=UTC))) == ["canberra"]
    # Tuesday 15:30 UTC: London 15:30 and New York 10:30 overlap.
    assert names(on_duty(NETWORK, datetime(2026, 12, 1, 15, 30, tzinfo=UTC))) == [
        "london",
        "washington",
    ]


def test_shift_end_is_exclusive_and_start_inclusive() -> None:
    assert names(on_duty([LONDON], datetime(2026, 12, 1, 8, 0, tzinfo=UTC))) == ["london"]
    assert on_duty([LONDON], datetime(2026, 12, 1, 16, 0, tzinfo=UTC)) == []


def test_daylight_saving_moves_a_shift_in_utc() -> None:
    # In July London is UTC+1: 07:30 UTC is 08:30 local, on duty.
    assert names(on_duty([LONDON], datetime(2026, 7, 7, 7, 30, tzinfo=UTC))) == ["london"]
    # In December it is 07:30 local, not yet.
    assert on_duty([LONDON], datetime(2026, 12, 1, 7, 30, tzinfo=UTC)) == []


def test_an_overnight_shift_covers_the_next_morning() -> None:
    night = officer("night", "Asia/Dubai", [(4, time(22), time(6))])  # Friday 22:00 to 06:00
    # Saturday 2026-12-05 01:00 in Dubai is Friday 21:00 UTC.
    assert names(on_duty([night], datetime(2026, 12, 4, 21, tzinfo=UTC))) == ["night"]
    # Friday 21:00 in Dubai (17:00 UTC) is before the shift.
    assert on_duty([night], datetime(2026, 12, 4, 17, tzinfo=UTC)) == []
    # Saturday 06:00 Dubai (02:00 UTC) the shift has ended.
    assert on_duty([night], datetime(2026, 12, 5, 2, tzinfo=UTC)) == []


def test_inactive_and_offline_officers() -> None:
    gone = office_hours("gone", "Europe/London")
    gone.active = False
    away = office_hours("away", "Europe/London", presence=Presence.AWAY)
    at_nine = datetime(2026, 12, 1, 9, tzinfo=UTC)
    assert names(on_duty([gone, away, LONDON], at_nine)) == ["away", "london"]
    assert names(available([gone, away, LONDON], at_nine)) == ["london"]


def test_on_call_supervisor_needs_a_phone_and_an_on_call_shift() -> None:
    every_hour = [(day, time(0), time(0)) for day in WEEKDAYS]
    supervisor = officer(
        "sup",
        "Europe/London",
        every_hour,
        role=OfficerRole.SUPERVISOR,
        phone="+447700900001",
        on_call=True,
    )
    no_phone = officer(
        "nophone", "Europe/London", every_hour, role=OfficerRole.SUPERVISOR, on_call=True
    )
    plain = officer("plain", "Europe/London", every_hour, phone="+447700900002", on_call=True)
    moment = datetime(2026, 12, 6, 3, tzinfo=UTC)  # Sunday night
    assert names(on_call_supervisors([supervisor, no_phone, plain], moment)) == ["sup"]


def test_gaps_show_hours_nobody_covers() -> None:
    monday = datetime(2026, 11, 30, 0, tzinfo=UTC)
    uncovered = gaps(NETWORK, monday, days=1)
    # Canberra 08-16 AEDT is 21:00-05:00 UTC; London 08-16 UTC; Washington 13-21 UTC.
    # Monday 00:00-05:00 UTC is Monday 11:00-16:00 in Sydney: covered. 05:00-08:00 is not.
    assert [moment.hour for moment in uncovered] == [5, 6, 7]
    every_hour = [(day, time(0), time(0)) for day in WEEKDAYS]
    assert gaps([officer("always", "UTC", every_hour)], monday) == []


def test_the_coverage_report_names_who_is_on_and_each_gap() -> None:
    from bot.handoff.rota import coverage_report

    monday = datetime(2026, 11, 30, 9, tzinfo=UTC)
    report = coverage_report(NETWORK, monday, days=1)
    assert report[0] == "on duty now (Mon 09:00 UTC): london"
    # Monday 21:00 UTC is Tuesday 08:00 in Sydney, so Monday evening is covered;
    # Tuesday 05:00-08:00 UTC nobody is.
    assert report[1:] == ["GAP: nobody on duty Tue 01 Dec 05:00 to Tue 01 Dec 08:00 UTC"]
    every_hour = [(day, time(0), time(0)) for day in WEEKDAYS]
    whole = coverage_report([officer("always", "UTC", every_hour)], monday)
    assert whole[-1] == "the rota covers every hour of the next 7 days"
