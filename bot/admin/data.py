"""Posts, travel advice, and bulk import and export, in the guidance admin.

Posts and travel advice are what citizens are told about where to go and
whether to travel, so only reviewers and admins change them; editors can
look. A form is checked by the importer's own row models
(:class:`bot.importer.PostRow`, :class:`bot.importer.TravelAdviceRow`), so a
single edit and a bulk import follow the same rules. The internal API reads
the database on every request, so a saved change is what the next citizen
gets. Every change is audited with the values before and after.

A form carries a fingerprint of the record as it was drawn; if someone else
saved it in the meantime the save is refused and the current values shown,
rather than silently overwriting their change.

Import (admins only) checks every row before writing any, shows each bad row
with its reasons, and can be run as a check only. Guidance articles are
imported as drafts that go through review. Export (reviewers and admins)
downloads CSV or JSON in the import's own format.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final, Literal, cast
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile

from bot import audit, importer
from bot.admin.common import (
    PREFIX,
    Who,
    actor,
    checked_form,
    redirect,
    render,
    staff,
    unit,
)
from bot.db.models import AdviseAgainst, OfficerRole, Post, TravelAdvice
from bot.geo.gazetteer import country_name
from bot.importer import ADMIN_KINDS, FORMATS, ImportReport, Kind, PostRow, TravelAdviceRow

logger = logging.getLogger(__name__)

router = APIRouter(prefix=PREFIX, include_in_schema=False)

# Who may change posts and travel advice, and export (admins always may).
CHANGING_ROLES: Final = (OfficerRole.REVIEWER,)
PAGE_SIZE: Final = 50
MAX_SEARCH_LENGTH: Final = 100
# Leaves room under the app's request body limit for the rest of the form.
FORM_OVERHEAD_BYTES: Final = 16 * 1024

DONE: Final = {
    "created": "The {noun} has been added. Citizens are told about it from now on.",
    "saved": "Your changes have been saved. Citizens are told the new details from now on.",
    "deleted": "The {noun} has been deleted.",
    "unchanged": "Nothing was changed.",
}


# -- what a form is made of ----------------------------------------------------------------


@dataclass(frozen=True)
class FormField:
    """One question on a post or travel advice form (GOV.UK markup is in the template)."""

    name: str
    label: str
    hint: str = ""
    widget: Literal["text", "textarea", "select", "number"] = "text"
    options: tuple[tuple[str, str], ...] = ()
    width: str = ""
    invalid: str = ""  # what to say when the answer is wrong
    missing: str = ""  # what to say when there is no answer


@dataclass(frozen=True)
class Record:
    """A kind of record the admin edits: posts or travel advice."""

    key: Literal["posts", "travel-advice"]
    section: str
    noun: str
    title: str
    model: type[Post] | type[TravelAdvice]
    row: type[PostRow] | type[TravelAdviceRow]
    fields: tuple[FormField, ...]
    fixed_on_edit: tuple[str, ...] = ()
    deletable: bool = False

    def field(self, name: str) -> FormField | None:
        return next((item for item in self.fields if item.name == name), None)


COUNTRY = FormField(
    "country",
    "Country",
    hint="The 2-letter ISO country code, like ES for Spain.",
    width="govuk-input--width-2",
    invalid="Enter a 2-letter country code, like ES for Spain",
    missing="Enter the country code",
)
PHONE_HINT = "In international format, starting with +, like +351 21 392 4000."

POSTS = Record(
    key="posts",
    section="posts",
    noun="post",
    title="Posts",
    model=Post,
    row=PostRow,
    deletable=True,
    fields=(
        COUNTRY,
        FormField(
            "kind",
            "Kind of post",
            widget="select",
            options=(
                ("embassy", "Embassy"),
                ("high-commission", "High commission"),
                ("consulate", "Consulate"),
                ("consulate-general", "Consulate general"),
            ),
            invalid="Choose the kind of post",
            missing="Choose the kind of post",
        ),
        FormField(
            "name",
            "Name",
            hint="As citizens see it, like British Embassy Lisbon.",
            invalid="Enter a name between 3 and 200 characters",
            missing="Enter the post's name",
        ),
        FormField("city", "City", invalid="Enter the city", missing="Enter the city"),
        FormField(
            "address",
            "Address",
            widget="textarea",
            invalid="Enter the full address",
            missing="Enter the address",
        ),
        FormField(
            "phone",
            "Phone number",
            hint=PHONE_HINT,
            width="govuk-input--width-20",
            invalid="Enter the phone number in international format, like +351 21 392 4000",
            missing="Enter the phone number",
        ),
        FormField(
            "email",
            "Email address",
            width="govuk-input--width-30",
            invalid="Enter an email address in the correct format, like lisbon@fcdo.gov.uk",
            missing="Enter the email address",
        ),
        FormField(
            "opening_hours",
            "Opening hours",
            widget="textarea",
            hint="As citizens should read them, like Monday to Friday, 9am to 1pm.",
            invalid="Enter the opening hours",
            missing="Enter the opening hours",
        ),
        FormField(
            "timezone",
            "Time zone",
            hint="The IANA time zone of the post, like Europe/Lisbon.",
            width="govuk-input--width-20",
            invalid="Enter an IANA time zone, like Europe/Lisbon",
            missing="Enter the time zone",
        ),
        FormField(
            "emergency_phone",
            "Emergency phone number",
            hint=f"Answered 24 hours a day. {PHONE_HINT}",
            width="govuk-input--width-20",
            invalid="Enter the emergency number in international format, like +44 20 7008 5000",
            missing="Enter the emergency phone number",
        ),
        FormField(
            "rank",
            "Order",
            widget="number",
            hint="0 for the main post of the country (listed first), then 1, 2 and so on.",
            width="govuk-input--width-3",
            invalid="Enter a whole number, 0 or more",
        ),
    ),
)

TRAVEL_ADVICE = Record(
    key="travel-advice",
    section="travel-advice",
    noun="travel advice",
    title="Travel advice",
    model=TravelAdvice,
    row=TravelAdviceRow,
    fixed_on_edit=("country",),
    fields=(
        COUNTRY,
        FormField(
            "summary",
            "Summary",
            widget="textarea",
            hint="What citizens are told first about travelling to this country.",
            invalid="Enter a summary of at least 10 characters",
            missing="Enter the summary",
        ),
        FormField(
            "advise_against",
            "FCDO advises against",
            widget="select",
            options=(
                (AdviseAgainst.NONE.value, "No warning"),
                (AdviseAgainst.ALL_BUT_ESSENTIAL_PARTS.value, "All but essential travel to parts"),
                (AdviseAgainst.ALL_PARTS.value, "All travel to parts"),
                (AdviseAgainst.ALL_BUT_ESSENTIAL.value, "All but essential travel"),
                (AdviseAgainst.ALL.value, "All travel"),
            ),
            invalid="Choose the warning level",
        ),
        FormField(
            "advise_against_areas",
            "Areas the warning covers",
            widget="textarea",
            hint="Needed when the warning covers parts of the country.",
            invalid="Enter the areas the warning covers",
        ),
        FormField(
            "last_updated",
            "Last updated",
            hint="The date on the FCDO's page, like 2026-09-14.",
            width="govuk-input--width-10",
            invalid="Enter the date as a real date, like 2026-09-14",
            missing="Enter the date the advice was last updated",
        ),
        FormField(
            "url",
            "Link to the full advice",
            hint="Starts with https://, like https://www.gov.uk/foreign-travel-advice/spain.",
            invalid="Enter a link that starts with https://",
            missing="Enter the link to the full advice",
        ),
    ),
)

RECORDS: Final = {POSTS.key: POSTS, TRAVEL_ADVICE.key: TRAVEL_ADVICE}


# -- values, checks and audit ----------------------------------------------------------------


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, AdviseAgainst):
        return value.value
    return str(value)


def snapshot(record: Record, item: Post | TravelAdvice) -> dict[str, str]:
    """The record's editable values as text (what the form shows and the audit keeps)."""
    return {entry.name: _text(getattr(item, entry.name)) for entry in record.fields}


def fingerprint(values: Mapping[str, str]) -> str:
    """A short digest of the values a form was drawn with, to notice a concurrent save."""
    encoded = json.dumps(dict(sorted(values.items())), ensure_ascii=False).encode()
    return hashlib.sha256(encoded).hexdigest()[:32]


@dataclass
class Checked:
    """A form's answers, and the valid row or the errors (field name to message)."""

    values: dict[str, str]
    row: PostRow | TravelAdviceRow | None = None
    errors: dict[str, str] = field(default_factory=dict)


def check(record: Record, values: dict[str, str]) -> Checked:
    """Validates answers with the importer's row model; friendly messages per field."""
    cleaned = {name: value for name, value in values.items() if value != ""}
    try:
        row = record.row.model_validate(cleaned)
    except ValidationError as exc:
        return Checked(values, errors=_errors(record, exc))
    return Checked(values, row=row)


def _errors(record: Record, exc: ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else _named_in(record, error["msg"])
        entry = record.field(name)
        if entry is None:
            errors.setdefault("", str(error["msg"]).removeprefix("Value error, "))
            continue
        if error["type"] == "missing":
            message = entry.missing or f"Enter {entry.label.lower()}"
        else:
            message = entry.invalid or str(error["msg"]).removeprefix("Value error, ")
        errors.setdefault(name, message)
    ordered = [item.name for item in record.fields]
    return dict(sorted(errors.items(), key=lambda pair: _position(ordered, pair[0])))


def _named_in(record: Record, message: str) -> str:
    # A model-level rule (like advise_against_areas) names its field in the
    # message; the longest name wins ("advise_against_areas" over "country").
    named = [entry.name for entry in record.fields if entry.name in message]
    return max(named, key=len) if named else ""


def _position(ordered: list[str], name: str) -> int:
    return ordered.index(name) if name in ordered else len(ordered)


def _answers(record: Record, form: FormData) -> dict[str, str]:
    values = {}
    for entry in record.fields:
        raw = form.get(entry.name)
        text = raw.strip() if isinstance(raw, str) else ""
        values[entry.name] = text.replace("\r\n", "\n")
    return values


def _apply(record: Record, item: Post | TravelAdvice, row: PostRow | TravelAdviceRow) -> None:
    for entry in record.fields:
        if entry.name in record.fixed_on_edit and getattr(item, entry.name, None):
            continue
        setattr(item, entry.name, getattr(row, entry.name))
    # Entered by staff: no longer the demonstration data it may have started as.
    item.is_sample = False


def _changes(before: Mapping[str, str], after: Mapping[str, str]) -> dict[str, dict[str, str]]:
    changed = [name for name in after if before.get(name) != after[name]]
    return {
        "before": {name: before.get(name, "") for name in changed},
        "after": {name: after[name] for name in changed},
    }


def _conflict(
    session: Session, record: Record, row: PostRow | TravelAdviceRow, item_id: int | None
) -> dict[str, str]:
    """The unique rules of the table, as form errors (a post per country, city and kind)."""
    if isinstance(row, PostRow):
        clash = session.scalars(
            select(Post).where(
                Post.country == row.country, Post.city == row.city, Post.kind == row.kind
            )
        ).first()
        if clash is not None and clash.id != item_id:
            return {"city": f"There is already a {row.kind} in {row.city}, {row.country}"}
        return {}
    existing = session.scalars(
        select(TravelAdvice).where(TravelAdvice.country == row.country)
    ).first()
    if existing is not None and existing.id != item_id:
        return {"country": f"There is already travel advice for {row.country}: change that one"}
    return {}


# -- lists -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Listing:
    """One page of a filtered list."""

    items: list[dict[str, Any]]
    total: int
    page: int
    pages: int


def _filters(request: Request) -> tuple[str, str, int, dict[str, str]]:
    country = request.query_params.get("country", "").strip().upper()[:2]
    query = request.query_params.get("q", "").strip()[:MAX_SEARCH_LENGTH]
    raw_page = request.query_params.get("page", "1")
    page = int(raw_page) if raw_page.isdigit() and int(raw_page) > 0 else 1
    errors: dict[str, str] = {}
    if country:
        try:
            country_name(country)
        except KeyError:
            errors["country"] = "Enter a 2-letter country code, like ES for Spain"
    return country, query, page, errors


def _search(record: Record, query: str) -> Any:
    pattern = f"%{query.replace('%', '').replace('_', '')}%"
    columns: tuple[Any, ...]
    if record is POSTS:
        columns = (Post.name, Post.city, Post.address, Post.email, Post.phone)
    else:
        columns = (TravelAdvice.summary, TravelAdvice.advise_against_areas)
    return or_(*(column.ilike(pattern) for column in columns))


def _listing(record: Record, country: str, query: str, page: int) -> Any:
    model = record.model

    def read(session: Session) -> Listing:
        statement = select(model)
        if country:
            statement = statement.where(model.country == country)
        if query:
            statement = statement.where(_search(record, query))
        total = int(session.scalar(select(func.count()).select_from(statement.subquery())) or 0)
        pages = max(1, -(-total // PAGE_SIZE))
        current = min(page, pages)
        ordering = (
            (Post.country, Post.rank, Post.city, Post.id)
            if record is POSTS
            else (TravelAdvice.country,)
        )
        found = session.scalars(
            statement.order_by(*ordering).offset((current - 1) * PAGE_SIZE).limit(PAGE_SIZE)
        )
        items = [
            {"id": item.id, "is_sample": item.is_sample, **snapshot(record, item)}
            for item in cast("list[Post | TravelAdvice]", list(found))
        ]
        for item in items:
            item["country_name"] = _country_label(str(item["country"]))
        return Listing(items=items, total=total, page=current, pages=pages)

    return read


def _get(session: Session, record: Record, item_id: int) -> Post | TravelAdvice | None:
    if record is POSTS:
        return session.get(Post, item_id)
    return session.get(TravelAdvice, item_id)


def _country_label(code: str) -> str:
    try:
        return country_name(code)
    except KeyError:
        return code


def _page_link(request: Request, record: Record, page: int) -> str:
    params = {key: value for key, value in request.query_params.items() if key != "page"}
    params["page"] = str(page)
    return f"{request.scope.get('root_path', '')}{PREFIX}/{record.key}?{urlencode(params)}"


async def _list_page(request: Request, record: Record) -> Response:
    who = await staff(request)
    country, query, page, errors = _filters(request)
    listing = await unit(request, _listing(record, "" if errors else country, query, page))
    done = request.query_params.get("done", "")
    return render(
        request,
        f"admin/data/{record.key.replace('-', '_')}.html",
        {
            "section": record.section,
            "record": record,
            "listing": listing,
            "country": country,
            "query": query,
            "errors": errors,
            "may_change": _may_change(who),
            "done": DONE[done].format(noun=record.noun) if done in DONE else None,
            "previous_href": _page_link(request, record, listing.page - 1),
            "next_href": _page_link(request, record, listing.page + 1),
        },
        who=who,
    )


def _may_change(who: Who) -> bool:
    return who.role in {OfficerRole.REVIEWER.value, OfficerRole.ADMIN.value}


@router.get("/posts")
async def posts_page(request: Request) -> Response:
    """Every post, filtered by country and searched by name, city, address or contact."""
    return await _list_page(request, POSTS)


@router.get("/travel-advice")
async def travel_advice_page(request: Request) -> Response:
    """Travel advice by country, searched by summary and areas."""
    return await _list_page(request, TRAVEL_ADVICE)


# -- one record ------------------------------------------------------------------------------


def _form(
    request: Request,
    who: Who,
    record: Record,
    *,
    item_id: int | None,
    values: Mapping[str, str],
    drawn: str,
    errors: Mapping[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "admin/data/form.html",
        {
            "section": record.section,
            "record": record,
            "item_id": item_id,
            "values": values,
            "fingerprint": drawn,
            "errors": dict(errors or {}),
            "may_change": _may_change(who),
            "done": DONE.get(request.query_params.get("done", ""), "").format(noun=record.noun)
            or None,
            "country_name": _country_label(values.get("country", "")),
        },
        who=who,
        status_code=status_code,
    )


def _load(record: Record, item_id: int) -> Any:
    def read(session: Session) -> dict[str, str] | None:
        item = _get(session, record, item_id)
        return snapshot(record, item) if item is not None else None

    return read


async def _record_page(request: Request, record: Record, item_id: int) -> Response:
    who = await staff(request)
    values = await unit(request, _load(record, item_id))
    if values is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"There is no such {record.noun}.")
    return _form(request, who, record, item_id=item_id, values=values, drawn=fingerprint(values))


async def _new_page(request: Request, record: Record) -> Response:
    who = await staff(request, *CHANGING_ROLES)
    blank = {entry.name: "" for entry in record.fields}
    if record is POSTS:
        blank["rank"] = "0"
    else:
        blank["advise_against"] = AdviseAgainst.NONE.value
    return _form(request, who, record, item_id=None, values=blank, drawn="")


@dataclass
class _Saved:
    item_id: int | None = None
    errors: dict[str, str] = field(default_factory=dict)
    current: dict[str, str] | None = None
    changed: bool = True


async def _save(request: Request, record: Record, item_id: int | None) -> Response:
    """Creates (``item_id`` None) or updates a record; the form again with errors if wrong."""
    who = await staff(request, *CHANGING_ROLES)
    form = await checked_form(request, who)
    values = _answers(record, form)
    drawn = form.get("fingerprint")
    drawn = drawn if isinstance(drawn, str) else ""

    def write(session: Session) -> _Saved:
        item = _get(session, record, item_id) if item_id is not None else None
        if item_id is not None and item is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"There is no such {record.noun}.")
        before = snapshot(record, item) if item is not None else None
        if before is not None:
            for name in record.fixed_on_edit:
                values[name] = before[name]
            if fingerprint(before) != drawn:
                return _Saved(
                    errors={
                        "": f"Someone else changed this {record.noun} while you were editing it. "
                        "The form now shows their version: make your changes again."
                    },
                    current=before,
                )
        checked = check(record, values)
        if checked.row is None:
            return _Saved(errors=checked.errors)
        clash = _conflict(session, record, checked.row, item_id)
        if clash:
            return _Saved(errors=clash)
        if item is None:
            item = Post() if record is POSTS else TravelAdvice()
            session.add(item)
        _apply(record, item, checked.row)
        session.flush()
        after = snapshot(record, item)
        if before is not None and before == after:
            return _Saved(item_id=item.id, changed=False)
        audit.record(
            session=session,
            actor=actor(who),
            action=f"admin.{_singular(record)}_{'updated' if before else 'created'}",
            subject=f"{_singular(record)}:{item.id}",
            details=_changes(before, after) if before else {"after": after},
        )
        return _Saved(item_id=item.id)

    saved = await unit(request, write)
    if saved.errors:
        shown = saved.current if saved.current is not None else values
        return _form(
            request,
            who,
            record,
            item_id=item_id,
            values=shown,
            drawn=fingerprint(saved.current) if saved.current is not None else drawn,
            errors=saved.errors,
            status_code=409 if saved.current is not None else 400,
        )
    done = "unchanged" if not saved.changed else ("saved" if item_id else "created")
    return redirect(request, f"{PREFIX}/{record.key}/{saved.item_id}?done={done}")


def _singular(record: Record) -> str:
    return "post" if record is POSTS else "travel_advice"


@router.get("/posts/new")
async def new_post_page(request: Request) -> Response:
    """An empty post form (reviewers and admins)."""
    return await _new_page(request, POSTS)


@router.post("/posts/new")
async def create_post(request: Request) -> Response:
    """Adds a post after the importer's checks."""
    return await _save(request, POSTS, None)


@router.get("/posts/{item_id:int}")
async def post_page(request: Request, item_id: int) -> Response:
    """A post: a form for reviewers and admins, its details for editors."""
    return await _record_page(request, POSTS, item_id)


@router.post("/posts/{item_id:int}")
async def update_post(request: Request, item_id: int) -> Response:
    """Saves a post's changes (audited with the values before and after)."""
    return await _save(request, POSTS, item_id)


@router.get("/travel-advice/new")
async def new_travel_advice_page(request: Request) -> Response:
    """An empty travel advice form, for a country that has none yet."""
    return await _new_page(request, TRAVEL_ADVICE)


@router.post("/travel-advice/new")
async def create_travel_advice(request: Request) -> Response:
    """Adds a country's travel advice after the importer's checks."""
    return await _save(request, TRAVEL_ADVICE, None)


@router.get("/travel-advice/{item_id:int}")
async def travel_advice_item_page(request: Request, item_id: int) -> Response:
    """One country's travel advice."""
    return await _record_page(request, TRAVEL_ADVICE, item_id)


@router.post("/travel-advice/{item_id:int}")
async def update_travel_advice(request: Request, item_id: int) -> Response:
    """Saves a country's travel advice (its country stays as it is)."""
    return await _save(request, TRAVEL_ADVICE, item_id)


@router.get("/posts/{item_id:int}/delete")
async def delete_post_page(request: Request, item_id: int) -> Response:
    """Asks to confirm before a post is deleted."""
    who = await staff(request, *CHANGING_ROLES)
    values = await unit(request, _load(POSTS, item_id))
    if values is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="There is no such post.")
    return render(
        request,
        "admin/data/delete.html",
        {
            "section": POSTS.section,
            "record": POSTS,
            "item_id": item_id,
            "values": values,
            "country_name": _country_label(values["country"]),
        },
        who=who,
    )


@router.post("/posts/{item_id:int}/delete")
async def delete_post(request: Request, item_id: int) -> Response:
    """Deletes a post (cases that named it keep their record, without the post)."""
    who = await staff(request, *CHANGING_ROLES)
    await checked_form(request, who)

    def remove(session: Session) -> bool:
        post = session.get(Post, item_id)
        if post is None:
            return False
        before = snapshot(POSTS, post)
        session.delete(post)
        audit.record(
            session=session,
            actor=actor(who),
            action="admin.post_deleted",
            subject=f"post:{item_id}",
            details={"before": before},
        )
        return True

    if not await unit(request, remove):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="There is no such post.")
    return redirect(request, f"{PREFIX}/posts?done=deleted")


# -- import and export -------------------------------------------------------------------------

KIND_LABELS: Final[dict[Kind, str]] = {
    "posts": "Posts",
    "travel-advice": "Travel advice",
    "articles": "Guidance articles",
}
CONTENT_TYPES: Final = {"csv": "text/csv; charset=utf-8", "json": "application/json"}


def upload_limit(request: Request) -> int:
    """The largest file accepted, under the import's request body limit."""
    max_body: int = request.app.state.settings.admin_import_max_bytes
    return max(1024, max_body - FORM_OVERHEAD_BYTES)


def _size(limit: int) -> str:
    return f"{limit // 1024} KB"


def _import_export_page(
    request: Request,
    who: Who,
    *,
    errors: Mapping[str, str] | None = None,
    chosen: Mapping[str, str] | None = None,
    report: ImportReport | None = None,
    checked_only: bool = False,
    status_code: int = 200,
) -> Response:
    role = who.role
    return render(
        request,
        "admin/data/import_export.html",
        {
            "section": "import-export",
            "kinds": [(kind, KIND_LABELS[kind]) for kind in ADMIN_KINDS],
            "formats": FORMATS,
            "may_export": role in {OfficerRole.REVIEWER.value, OfficerRole.ADMIN.value},
            "may_import": role == OfficerRole.ADMIN.value,
            "limit": _size(upload_limit(request)),
            "errors": dict(errors or {}),
            "chosen": dict(chosen or {}),
            "report": report,
            "report_label": KIND_LABELS.get(report.kind, "") if report else "",
            "checked_only": checked_only,
        },
        who=who,
        status_code=status_code,
    )


@router.get("/import-export")
async def import_export_page(request: Request) -> Response:
    """Download links (reviewers and admins) and the upload form (admins)."""
    who = await staff(request)
    return _import_export_page(request, who)


@router.get("/export/{kind}.{fmt}")
async def export(request: Request, kind: str, fmt: str) -> Response:
    """A download of every post, travel advice or live article, in the import's format."""
    who = await staff(request, *CHANGING_ROLES)
    if kind not in ADMIN_KINDS or fmt not in FORMATS:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="There is no such export.")
    chosen: Kind = next(item for item in ADMIN_KINDS if item == kind)

    def read(session: Session) -> str:
        rows = importer.export_rows(session=session, kind=chosen)
        text = importer.to_csv(chosen, rows) if fmt == "csv" else importer.to_json(chosen, rows)
        audit.record(
            session=session,
            actor=actor(who),
            action="admin.exported",
            subject=chosen,
            details={"format": fmt, "rows": len(rows)},
        )
        return text

    body = await unit(request, read)
    filename = f"{chosen}-{date.today().isoformat()}.{fmt}"
    return Response(
        content=body.encode("utf-8"),
        media_type=CONTENT_TYPES[fmt],
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        },
    )


def _choice(form: FormData, name: str, allowed: Sequence[str]) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) and value in allowed else None


@router.post("/import")
async def import_file(request: Request) -> Response:
    """Checks every row of an uploaded file, then writes all of them or none (admins only)."""
    who = await staff(request, OfficerRole.ADMIN)
    form = await checked_form(request, who)
    kind = _choice(form, "kind", ADMIN_KINDS)
    fmt = _choice(form, "format", FORMATS)
    check_only = form.get("check_only") == "yes"
    chosen = {"kind": kind or "", "format": fmt or "", "check_only": "yes" if check_only else ""}
    errors: dict[str, str] = {}
    if kind is None:
        errors["kind"] = "Choose what the file holds"
    if fmt is None:
        errors["format"] = "Choose the file's format"
    upload = form.get("file")
    text: str | None = None
    if not isinstance(upload, UploadFile) or not upload.filename:
        errors["file"] = "Choose a file to import"
    else:
        limit = upload_limit(request)
        content = await upload.read(limit + 1)
        if len(content) > limit:
            errors["file"] = f"The file must be smaller than {_size(limit)}"
        elif not content.strip():
            errors["file"] = "The file is empty"
        else:
            try:
                text = content.decode("utf-8-sig")
            except UnicodeDecodeError:
                errors["file"] = "The file must be saved as UTF-8 text (CSV UTF-8 in a spreadsheet)"
    rows: list[dict[str, Any]] = []
    if text is not None and fmt is not None and "file" not in errors:
        try:
            rows = importer.parse_rows(text, "csv" if fmt == "csv" else "json")
        except ValueError as exc:
            errors["file"] = f"The file cannot be read as {fmt.upper()}: {exc}"
        else:
            if not rows:
                errors["file"] = "The file has no rows"
    if errors or kind is None:
        return _import_export_page(request, who, errors=errors, chosen=chosen, status_code=400)
    chosen_kind: Kind = next(item for item in ADMIN_KINDS if item == kind)

    def work(session: Session) -> ImportReport:
        report = importer.import_rows(
            session=session, kind=chosen_kind, rows=rows, case_key="", author=actor(who)
        )
        if check_only or not report.ok:
            session.rollback()
            report.written = False
            return report
        audit.record(
            session=session,
            actor=actor(who),
            action="admin.imported",
            subject=chosen_kind,
            details={"format": fmt, "rows": report.accepted},
        )
        return report

    report = await unit(request, work)
    logger.info(
        "admin import of %s: %d valid, %d rejected, written=%s",
        chosen_kind,
        report.accepted,
        len(report.rejected),
        report.written,
    )
    return _import_export_page(
        request,
        who,
        chosen=chosen,
        report=report,
        checked_only=check_only,
        status_code=200 if report.ok else 400,
    )
