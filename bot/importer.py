"""Validating import of real data (posts, travel advice, cases) from CSV or JSON.

Every row is checked before anything is written. If any row is rejected the
report lists each one with its reasons and the database is left untouched;
otherwise all rows are written in one transaction. Rows are upserted by their
natural key, so re-importing a corrected file is safe.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil import parser as date_parser
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.cases.identity import REFERENCE_PATTERN, birth_date_digest, surname_digest
from bot.db.models import AdviseAgainst, Case, CaseEvent, Post, TravelAdvice
from bot.geo.gazetteer import country_name

Kind = Literal["posts", "travel-advice", "cases"]
KINDS: tuple[Kind, ...] = ("posts", "travel-advice", "cases")
MAX_ROWS = 100_000


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("country", check_fields=False)
    @classmethod
    def _country(cls, value: str) -> str:
        code = value.upper()
        try:
            country_name(code)
        except KeyError as exc:
            raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 code") from exc
        return code


class PostRow(_Row):
    """One embassy, high commission or consulate."""

    country: str
    kind: Literal["embassy", "high-commission", "consulate", "consulate-general"]
    name: str = Field(min_length=3, max_length=200)
    city: str = Field(min_length=1, max_length=200)
    address: str = Field(min_length=3)
    phone: str = Field(min_length=5, max_length=40, pattern=r"^\+[0-9 ()-]{4,}$")
    email: str = Field(min_length=3, max_length=200, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    opening_hours: str = Field(min_length=3)
    timezone: str
    emergency_phone: str = Field(min_length=5, max_length=40, pattern=r"^\+[0-9 ()-]{4,}$")
    rank: int = Field(default=0, ge=0)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{value!r} is not an IANA time zone") from exc
        return value


class TravelAdviceRow(_Row):
    """The travel advice summary for one country."""

    country: str
    summary: str = Field(min_length=10)
    advise_against: AdviseAgainst = AdviseAgainst.NONE
    advise_against_areas: str = ""
    last_updated: date
    url: str = Field(pattern=r"^https://")

    @model_validator(mode="after")
    def _areas(self) -> TravelAdviceRow:
        partial = {AdviseAgainst.ALL_PARTS, AdviseAgainst.ALL_BUT_ESSENTIAL_PARTS}
        if self.advise_against in partial and not self.advise_against_areas:
            raise ValueError(
                "advise_against_areas is required when the warning covers parts of the country"
            )
        return self


class CaseRow(_Row):
    """A case with its identity facts in clear; only their keyed hashes are stored."""

    reference: str = Field(pattern=REFERENCE_PATTERN.pattern)
    case_type: str = Field(min_length=2, max_length=48, pattern=r"^[a-z][a-z-]+$")
    status: str = Field(min_length=2, max_length=120)
    next_step: str = Field(min_length=2)
    surname: str = Field(min_length=1, max_length=120)
    date_of_birth: date
    timeline: list[str] = Field(default_factory=list)

    @field_validator("date_of_birth", mode="before")
    @classmethod
    def _born(cls, value: Any) -> Any:
        if isinstance(value, str):
            return date_parser.isoparse(value).date()
        return value

    @field_validator("timeline", mode="before")
    @classmethod
    def _timeline(cls, value: Any) -> Any:
        # CSV has no lists: entries are separated by "|".
        if isinstance(value, str):
            return [entry.strip() for entry in value.split("|") if entry.strip()]
        return value


ROW_MODELS: dict[Kind, type[_Row]] = {
    "posts": PostRow,
    "travel-advice": TravelAdviceRow,
    "cases": CaseRow,
}


@dataclass
class ImportReport:
    """What an import accepted and rejected, row by row."""

    kind: Kind
    accepted: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    written: bool = False

    @property
    def ok(self) -> bool:
        return not self.rejected

    def lines(self) -> list[str]:
        """Human-readable report."""
        head = f"{self.kind}: {self.accepted} valid, {len(self.rejected)} rejected"
        tail = "written" if self.written else "nothing written"
        return [f"{head}; {tail}"] + [f"  row {row}: {why}" for row, why in self.rejected]


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows from a CSV file (header line) or a JSON list (or {"<anything>": [...]})."""
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".csv":
        return [dict(row) for row in csv.DictReader(text.splitlines())]
    if path.suffix.lower() == ".json":
        document = json.loads(text)
        if isinstance(document, dict):
            lists = [value for value in document.values() if isinstance(value, list)]
            if len(lists) != 1:
                raise ValueError("a JSON object must hold exactly one list of rows")
            document = lists[0]
        if not isinstance(document, list):
            raise ValueError("JSON must be a list of rows")
        return document
    raise ValueError(f"{path.name}: use a .csv or .json file")


def validate_rows(kind: Kind, rows: Sequence[Any]) -> tuple[list[_Row], ImportReport]:
    """Checks every row; returns the valid ones and a report of the rest."""
    report = ImportReport(kind)
    model = ROW_MODELS[kind]
    valid: list[_Row] = []
    if len(rows) > MAX_ROWS:
        report.rejected.append((0, f"too many rows ({len(rows)} > {MAX_ROWS})"))
        return valid, report
    seen: dict[tuple[Any, ...], int] = {}
    for number, raw in enumerate(rows, start=1):
        if not isinstance(raw, dict):
            report.rejected.append((number, "not an object with named fields"))
            continue
        cleaned = {key: value for key, value in raw.items() if value not in ("", None)}
        try:
            row = model.model_validate(cleaned)
        except ValidationError as exc:
            reasons = "; ".join(
                f"{'.'.join(str(part) for part in error['loc']) or 'row'}: {error['msg']}"
                for error in exc.errors()
            )
            report.rejected.append((number, reasons))
            continue
        key = _natural_key(kind, row)
        if key in seen:
            report.rejected.append((number, f"duplicate of row {seen[key]}"))
            continue
        seen[key] = number
        valid.append(row)
    report.accepted = len(valid)
    return valid, report


def import_rows(
    *, session: Session, kind: Kind, rows: Sequence[Any], case_key: str, is_sample: bool = False
) -> ImportReport:
    """Validates then writes all rows, or nothing (the caller owns the transaction)."""
    valid, report = validate_rows(kind, rows)
    if not report.ok:
        return report
    writer = _WRITERS[kind]
    for row in valid:
        writer(session, row, case_key, is_sample)
    session.flush()
    report.written = True
    return report


def _natural_key(kind: Kind, row: _Row) -> tuple[Any, ...]:
    if isinstance(row, PostRow):
        return (row.country, row.city.casefold(), row.kind)
    if isinstance(row, TravelAdviceRow):
        return (row.country,)
    assert isinstance(row, CaseRow)
    return (row.reference,)


def _write_post(session: Session, row: _Row, _key: str, is_sample: bool) -> None:
    assert isinstance(row, PostRow)
    post = session.scalars(
        select(Post).where(
            Post.country == row.country, Post.city == row.city, Post.kind == row.kind
        )
    ).first()
    if post is None:
        post = Post(country=row.country, city=row.city, kind=row.kind)
        session.add(post)
    for name in ("name", "address", "phone", "email", "opening_hours", "timezone"):
        setattr(post, name, getattr(row, name))
    post.emergency_phone = row.emergency_phone
    post.rank = row.rank
    post.is_sample = is_sample


def _write_travel_advice(session: Session, row: _Row, _key: str, is_sample: bool) -> None:
    assert isinstance(row, TravelAdviceRow)
    advice = session.scalars(
        select(TravelAdvice).where(TravelAdvice.country == row.country)
    ).first()
    if advice is None:
        advice = TravelAdvice(country=row.country)
        session.add(advice)
    advice.summary = row.summary
    advice.advise_against = row.advise_against
    advice.advise_against_areas = row.advise_against_areas
    advice.last_updated = row.last_updated
    advice.url = row.url
    advice.is_sample = is_sample


def _write_case(session: Session, row: _Row, key: str, is_sample: bool) -> None:
    assert isinstance(row, CaseRow)
    case = session.scalars(select(Case).where(Case.reference == row.reference)).first()
    if case is None:
        case = Case(reference=row.reference)
        session.add(case)
    case.case_type = row.case_type
    case.status = row.status
    case.next_step = row.next_step
    case.surname_hash = surname_digest(key, row.surname)
    case.date_of_birth_hash = birth_date_digest(key, row.date_of_birth)
    case.is_sample = is_sample
    session.flush()
    known = {event.text for event in case.timeline}
    for text in row.timeline:
        if text not in known:
            session.add(CaseEvent(case_id=case.id, text=text))


_WRITERS: dict[Kind, Callable[[Session, _Row, str, bool], None]] = {
    "posts": _write_post,
    "travel-advice": _write_travel_advice,
    "cases": _write_case,
}
