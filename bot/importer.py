"""Validating import and export of real data (posts, travel advice, cases, articles), CSV or JSON.

Every row is checked before anything is written. If any row is rejected the
report lists each one with its reasons and the database is left untouched;
otherwise all rows are written in one transaction. Rows are upserted by their
natural key, so re-importing a corrected file is safe. Guidance articles are
the exception: an imported article becomes a new draft revision, never a
published one, so a second person reviews it before any citizen sees it.

The same row models check a single post or travel advice edited in the
guidance admin, so the form and the bulk import apply the same rules.

Exports write the rows back in the import's own format (so an export can be
corrected and re-imported). CSV cells that a spreadsheet would run as a
formula are prefixed with a quote on export, and the quote is removed again
on import.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
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
from bot.catalogue import SLUGS
from bot.db.models import (
    AdviseAgainst,
    Case,
    CaseEvent,
    GuidanceArticle,
    GuidanceRevision,
    OfficerRole,
    Post,
    RevisionStatus,
    TravelAdvice,
    utcnow,
)
from bot.geo.gazetteer import country_name
from bot.guidance import store, workflow
from bot.guidance.store import RevisionDraft

Kind = Literal["posts", "travel-advice", "cases", "articles"]
Format = Literal["csv", "json"]
# What ``bot import`` takes; articles are imported from the guidance admin.
KINDS: tuple[Kind, ...] = ("posts", "travel-advice", "cases")
# What the guidance admin imports and exports (never cases: their facts are hashed).
ADMIN_KINDS: tuple[Kind, ...] = ("posts", "travel-advice", "articles")
FORMATS: tuple[Format, ...] = ("csv", "json")
MAX_ROWS = 100_000
IMPORT_CHANGE_NOTE = "Imported from a file"
# A cell starting with one of these is a formula to a spreadsheet.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("country", check_fields=False)
    @classmethod
    def _country(cls, value: str) -> str:
        return country_code(value)


def country_code(value: str) -> str:
    """The upper-case ISO 3166-1 alpha-2 code; ValueError for anything else."""
    code = value.strip().upper()
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


class ArticleRow(_Row):
    """A guidance article's content; imported as a draft revision for review.

    The text is checked by the same rules as the admin's article form
    (:func:`bot.guidance.workflow.check`).
    """

    topic: str
    country: str | None = None
    title: str
    body: str
    source_url: str
    review_by: date
    example_questions: list[str] = Field(default_factory=list)

    @field_validator("topic")
    @classmethod
    def _topic(cls, value: str) -> str:
        if value not in SLUGS:
            raise ValueError(f"{value!r} is not a topic of the service catalogue")
        return value

    @field_validator("country")
    @classmethod
    def _country(cls, value: str | None) -> str | None:  # type: ignore[override]
        # Same name as _Row's, so it replaces it: an article without a
        # country is the generic one for its topic.
        return None if value is None else country_code(value)

    @field_validator("example_questions", mode="before")
    @classmethod
    def _split_examples(cls, value: Any) -> Any:
        # CSV has no lists: questions are separated by "|".
        if isinstance(value, str):
            return value.split("|")
        return value

    @model_validator(mode="after")
    def _content(self) -> ArticleRow:
        checked = workflow.check(
            workflow.Fields(
                title=self.title,
                body=self.body,
                source_url=self.source_url,
                review_by=self.review_by.isoformat(),
                example_questions="\n".join(self.example_questions),
                change_note=IMPORT_CHANGE_NOTE,
            ),
            today=utcnow().date(),
        )
        if checked.draft is None:
            raise ValueError(
                "; ".join(f"{name}: {message}" for name, message in checked.errors.items())
            )
        self.title = checked.draft.title
        self.body = checked.draft.body
        self.source_url = checked.draft.source_url
        self.example_questions = list(checked.draft.example_questions)
        return self

    def draft(self) -> RevisionDraft:
        """The revision content this row becomes."""
        return RevisionDraft(
            title=self.title,
            body=self.body,
            source_url=self.source_url,
            last_reviewed=utcnow().date(),
            review_by=self.review_by,
            example_questions=tuple(self.example_questions),
        )


ROW_MODELS: dict[Kind, type[_Row]] = {
    "posts": PostRow,
    "travel-advice": TravelAdviceRow,
    "cases": CaseRow,
    "articles": ArticleRow,
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
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise ValueError(f"{path.name}: use a .csv or .json file")
    return parse_rows(text, "csv" if suffix == "csv" else "json")


def parse_rows(text: str, fmt: Format) -> list[dict[str, Any]]:
    """Rows from CSV text (header line) or JSON text; ValueError when it is neither.

    CSV cells that an export protected against formula injection lose their
    leading quote again.
    """
    text = text.removeprefix("\ufeff")
    if fmt == "csv":
        try:
            reader = csv.DictReader(io.StringIO(text, newline=""))
            return [
                {key: _unguard(value) for key, value in row.items() if key is not None}
                for row in reader
            ]
        except csv.Error as exc:
            raise ValueError(f"not valid CSV: {exc}") from exc
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc.msg} (line {exc.lineno})") from exc
    if isinstance(document, dict):
        lists = [value for value in document.values() if isinstance(value, list)]
        if len(lists) != 1:
            raise ValueError("a JSON object must hold exactly one list of rows")
        document = lists[0]
    if not isinstance(document, list):
        raise ValueError("JSON must be a list of rows")
    return document


def _unguard(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("'") and value[1:].startswith(FORMULA_STARTS):
        return value[1:]
    return value


def validate_rows(kind: Kind, rows: Sequence[Any]) -> tuple[list[_Row], ImportReport]:
    """Checks every row; returns the valid ones and a report of the rest."""
    numbered, report = _validate(kind, rows)
    return [row for _number, row in numbered], report


def _validate(kind: Kind, rows: Sequence[Any]) -> tuple[list[tuple[int, _Row]], ImportReport]:
    report = ImportReport(kind)
    model = ROW_MODELS[kind]
    valid: list[tuple[int, _Row]] = []
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
        valid.append((number, row))
    report.accepted = len(valid)
    return valid, report


def import_rows(
    *,
    session: Session,
    kind: Kind,
    rows: Sequence[Any],
    case_key: str,
    is_sample: bool = False,
    author: str = "import",
) -> ImportReport:
    """Validates then writes all rows, or nothing (the caller owns the transaction).

    ``author`` is who the draft revisions of imported articles are recorded
    as (and so may not approve them).
    """
    numbered, report = _validate(kind, rows)
    if kind == "articles":
        articles = [(number, row) for number, row in numbered if isinstance(row, ArticleRow)]
        report.rejected += _changes_under_way(session, articles)
        report.rejected.sort()
        report.accepted = len({n for n, _ in numbered} - {n for n, _ in report.rejected})
    if not report.ok:
        return report
    if kind == "articles":
        by = workflow.Person(actor=author, role=OfficerRole.ADMIN)
        for _number, row in numbered:
            assert isinstance(row, ArticleRow)
            _write_article(session, row, by)
    else:
        writer = _WRITERS[kind]
        for _number, row in numbered:
            writer(session, row, case_key, is_sample)
    session.flush()
    report.written = True
    return report


def _changes_under_way(
    session: Session, rows: Sequence[tuple[int, ArticleRow]]
) -> list[tuple[int, str]]:
    """Rows whose article already has a draft or a revision in review.

    An import never overwrites someone's unfinished change; the article's
    change must be finished (approved, sent back and edited, or withdrawn) first.
    """
    refused: list[tuple[int, str]] = []
    for number, row in rows:
        article = store.find_article(session=session, topic=row.topic, country=row.country)
        under_way = workflow.open_revision(session, article.id) if article else None
        if under_way is not None:
            where = "in review" if under_way.status == RevisionStatus.IN_REVIEW else "a draft"
            refused.append(
                (
                    number,
                    f"revision {under_way.number} of this article is already {where}; "
                    "finish that change before importing a new text",
                )
            )
    return refused


def _natural_key(kind: Kind, row: _Row) -> tuple[Any, ...]:
    if isinstance(row, PostRow):
        return (row.country, row.city.casefold(), row.kind)
    if isinstance(row, TravelAdviceRow):
        return (row.country,)
    if isinstance(row, ArticleRow):
        return (row.topic, row.country)
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


def _write_article(session: Session, row: ArticleRow, by: workflow.Person) -> GuidanceRevision:
    """A new draft revision of the article (made when missing); never published here.

    Through the review workflow, which records each step in the audit log.
    """
    article = store.find_article(session=session, topic=row.topic, country=row.country)
    if article is None:
        return workflow.create_article(
            session,
            topic=row.topic,
            country=row.country,
            draft=row.draft(),
            change_note=IMPORT_CHANGE_NOTE,
            by=by,
        )
    draft = workflow.start_draft(session, article_id=article.id, by=by)
    return workflow.edit_draft(
        session, revision_id=draft.id, draft=row.draft(), change_note=IMPORT_CHANGE_NOTE, by=by
    )


# -- export --------------------------------------------------------------------------------


def fields(kind: Kind) -> tuple[str, ...]:
    """The columns of ``kind``, in the order of its row model (the CSV header)."""
    return tuple(ROW_MODELS[kind].model_fields)


def export_rows(*, session: Session, kind: Kind) -> list[dict[str, Any]]:
    """Every row of ``kind`` as the import reads it (articles: their live revision)."""
    if kind == "posts":
        posts = session.scalars(select(Post).order_by(Post.country, Post.rank, Post.id))
        return [{name: getattr(post, name) for name in fields("posts")} for post in posts]
    if kind == "travel-advice":
        advice = session.scalars(select(TravelAdvice).order_by(TravelAdvice.country))
        return [
            {
                "country": item.country,
                "summary": item.summary,
                "advise_against": AdviseAgainst(item.advise_against).value,
                "advise_against_areas": item.advise_against_areas,
                "last_updated": item.last_updated.isoformat(),
                "url": item.url,
            }
            for item in advice
        ]
    if kind == "articles":
        return [
            {
                "topic": article.topic,
                "country": article.country,
                "title": revision.title,
                "body": revision.body,
                "source_url": revision.source_url,
                "review_by": revision.review_by.isoformat() if revision.review_by else None,
                "example_questions": list(revision.example_questions or []),
            }
            for article, revision in live_revisions(session=session)
        ]
    raise ValueError(f"{kind} cannot be exported")


def live_revisions(
    *, session: Session, now: datetime | None = None
) -> list[tuple[GuidanceArticle, GuidanceRevision]]:
    """Each article's live revision, by the rules citizens are served by (bot.guidance.store).

    Articles serving nothing (never published, scheduled only, expired) are
    left out. Sorted by topic, then the generic article before country ones.
    One query for all published revisions, not one per article.
    """
    moment = now or utcnow()
    rows = session.execute(
        select(GuidanceArticle, GuidanceRevision)
        .join(GuidanceRevision, GuidanceRevision.article_id == GuidanceArticle.id)
        .where(GuidanceRevision.status == RevisionStatus.PUBLISHED)
    ).all()
    published: dict[int, tuple[GuidanceArticle, list[GuidanceRevision]]] = {}
    for article, revision in rows:
        published.setdefault(article.id, (article, []))[1].append(revision)
    live: list[tuple[GuidanceArticle, GuidanceRevision]] = []
    for article, revisions in published.values():
        current = store.current_publication(revisions, moment)
        if current is not None and not store.is_expired(current, moment):
            live.append((article, current))
    return sorted(live, key=lambda pair: (pair[0].topic, pair[0].country or "", pair[0].id))


def to_csv(kind: Kind, rows: Sequence[dict[str, Any]]) -> str:
    """CSV with a header line; lists joined by "|"; formula-like cells quoted."""
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=fields(kind), lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({name: _csv_cell(row.get(name)) for name in fields(kind)})
    return buffer.getvalue()


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        value = "|".join(str(item) for item in value)
    text = str(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def to_json(kind: Kind, rows: Sequence[dict[str, Any]]) -> str:
    """``{"<kind>": [rows]}``, which :func:`parse_rows` reads back."""
    return json.dumps({kind: list(rows)}, ensure_ascii=False, indent=2, default=str) + "\n"
