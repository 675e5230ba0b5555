"""Pure helpers for what citizens type: case references and dates of birth."""

from __future__ import annotations

import re
from datetime import date
from typing import Optional

from dateutil import parser as date_parser

_REFERENCE = re.compile(r"CON\W*(\d{4})\W*(\d{6})", re.IGNORECASE)
_HAS_DIGIT = re.compile(r"\d")
# "1985-03-14": a leading year means year-month-day, whatever the UK habit.
_YEAR_FIRST = re.compile(r"^\s*\d{4}\s*[-/.]")
EARLIEST_BIRTH_YEAR = 1900


def parse_reference(text: str) -> Optional[str]:
    """``CON-2026-004512`` from "con 2026 004512", "Ref: CON-2026-004512." etc."""
    match = _REFERENCE.search(text or "")
    if match is None:
        return None
    return f"CON-{match.group(1)}-{match.group(2)}"


def parse_birth_date(text: str, *, today: Optional[date] = None) -> Optional[date]:
    """A date of birth in any common format, read day-first as in the UK.

    Returns None for anything that is not a plausible birth date (no digits,
    unparseable, in the future, or before 1900), never raising.
    """
    today = today or date.today()
    cleaned = (text or "").strip()
    if not cleaned or not _HAS_DIGIT.search(cleaned) or len(cleaned) > 64:
        return None
    try:
        # A default far in the past makes a missing day or month visible as
        # a mismatch instead of silently borrowing today's.
        year_first = bool(_YEAR_FIRST.match(cleaned))
        parsed = date_parser.parse(
            cleaned,
            dayfirst=not year_first,
            yearfirst=year_first,
            fuzzy=True,
            default=date_parser.parse("0001-01-01"),
        ).date()
    except (ValueError, OverflowError, TypeError):
        return None
    if parsed.year < EARLIEST_BIRTH_YEAR or parsed > today:
        return None
    return parsed
