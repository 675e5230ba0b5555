"""Guidance articles in the admin: the list, an article's history and diffs, the editor.

Editors write drafts and submit them; reviewers approve them on the review
page (:mod:`bot.admin.review`). Every change goes through
:mod:`bot.guidance.workflow`, which checks who may do what and writes the
audit events. The editor's previews are rendered by the same functions the
guidance API uses (sanitised HTML for web chat, plain text for WhatsApp and
Telegram); a small script refreshes them as the editor types, and without
JavaScript the "Preview" button does the same with a round trip.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Final, TypeVar

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from bot.admin import articles_views as views
from bot.admin.common import PREFIX, Who, actor, checked_form, redirect, render, staff, unit
from bot.db.models import OfficerRole, utcnow
from bot.guidance import workflow
from bot.guidance.workflow import Person

router = APIRouter(prefix=PREFIX, include_in_schema=False)
T = TypeVar("T")

ARTICLES: Final = f"{PREFIX}/articles"
DONE: Final = {
    "created": "The article has been created as a draft. Submit it for review when it is ready.",
    "saved": "Your draft has been saved.",
    "submitted": "Your change has been submitted. A reviewer will approve it or send it back.",
    "withdrawn": "The change has been withdrawn.",
    "discarded": "The draft has been discarded. It stays in the history.",
    "rolled-back": "The earlier text has been restored and is now published.",
    "rolled-back-draft": "The earlier text has been copied into a new draft. Submit it for review.",
}
ERROR_STATUS: Final = {
    workflow.NotAllowed: status.HTTP_403_FORBIDDEN,
    workflow.Conflict: status.HTTP_409_CONFLICT,
    workflow.NotFound: status.HTTP_404_NOT_FOUND,
    workflow.Invalid: status.HTTP_400_BAD_REQUEST,
}


def person(who: Who) -> Person:
    """The workflow's view of the signed-in member of staff."""
    return Person(actor(who), OfficerRole(who.role))


def field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _id(raw: str) -> int:
    if not raw.isdigit() or len(raw) > 12:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="There is no such page.")
    return int(raw)


def _code(exc: workflow.WorkflowError) -> int:
    for kind, code in ERROR_STATUS.items():
        if isinstance(exc, kind):
            return code
    return status.HTTP_400_BAD_REQUEST


# -- the list ------------------------------------------------------------------------------


@router.get("/articles", response_class=HTMLResponse)
async def article_list(request: Request) -> Response:
    """Every article with filters by topic, country, state and review-by date, and a search."""
    who = await staff(request)
    filters = views.Filters.from_query(dict(request.query_params))
    tz = views.zone(who.timezone)
    rows = await unit(request, lambda s: views.list_articles(s, filters, now=utcnow(), tz=tz))
    return render(
        request,
        "admin/articles.html",
        {
            "section": "articles",
            "rows": rows,
            "filters": filters,
            "topics": views.TOPIC_SLUGS,
            "states": views.ARTICLE_STATES,
            "review_filters": views.REVIEW_FILTERS,
            "state_tags": views.STATE_TAGS,
            "state_labels": views.STATE_LABELS,
        },
        who=who,
    )


# -- a new article -------------------------------------------------------------------------


def _blank_form(request: Request) -> dict[str, str]:
    params = request.query_params
    examples = params.get("examples", "")
    return {
        "topic": params.get("topic", ""),
        "country": params.get("country", "").upper()[:2],
        "title": "",
        "body": "",
        "source_url": "https://www.gov.uk/",
        "review_by": "",
        "example_questions": "\n".join(workflow.clean_questions(examples.split("|")))
        if examples
        else "",
        "change_note": "New article",
    }


@router.get("/articles/new", response_class=HTMLResponse)
async def new_article_page(request: Request) -> Response:
    """The editor for a new article (a topic, generic or for one country)."""
    who = await staff(request)
    return _editor(request, who, values=_blank_form(request), revision=None)


@router.post("/articles/new", response_class=HTMLResponse)
async def new_article(request: Request) -> Response:
    """Creates the article with its first draft (or previews it without saving)."""
    who = await staff(request)
    form = await checked_form(request, who)
    values = _values(form, new=True)
    topic, country, errors = workflow.check_article(values["topic"], values["country"])
    checked = workflow.check(_fields(values), today=utcnow().date())
    if field(form, "action") == "preview":
        return _editor(request, who, values=values, revision=None, previewed=True)
    errors = {**errors, **checked.errors}
    if errors or checked.draft is None:
        return _editor(request, who, values=values, revision=None, errors=errors, status_code=400)
    draft = checked.draft
    submit = field(form, "action") == "submit"

    def create(session: Session) -> tuple[int, int]:
        revision = workflow.create_article(
            session,
            topic=topic,
            country=country,
            draft=draft,
            change_note=checked.change_note,
            by=person(who),
        )
        if submit:
            workflow.submit(session, revision_id=revision.id, by=person(who))
        return revision.article_id, revision.id

    try:
        article_id, _revision_id = await unit(request, create)
    except workflow.WorkflowError as exc:
        errors = exc.errors if isinstance(exc, workflow.Invalid) else {"": str(exc)}
        return _editor(
            request, who, values=values, revision=None, errors=errors, status_code=_code(exc)
        )
    return redirect(request, f"{ARTICLES}/{article_id}?done={'submitted' if submit else 'created'}")


# -- one article ---------------------------------------------------------------------------


async def _article_page(
    request: Request,
    who: Who,
    article_id: int,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    tz = views.zone(who.timezone)
    now = utcnow()
    params = request.query_params
    old_raw, new_raw = params.get("from", ""), params.get("to", "")

    def read(session: Session) -> tuple[views.ArticlePage | None, views.Comparison | None]:
        page = views.article_page(session, article_id, now=now, tz=tz)
        comparison = None
        if page is not None and old_raw.isdigit() and new_raw.isdigit():
            comparison = views.compare(
                session, article_id, int(old_raw), int(new_raw), now=now, tz=tz
            )
        return page, comparison

    page, comparison = await unit(request, read)
    if page is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="There is no such article.")
    diff_error = None
    if (old_raw or new_raw) and comparison is None:
        diff_error = "Choose two revisions of this article to compare."
    return render(
        request,
        "admin/article.html",
        {
            "section": "articles",
            "a": page,
            "comparison": comparison,
            "diff_error": diff_error,
            "selected_from": old_raw,
            "selected_to": new_raw,
            "error": error,
            "done": None if error else DONE.get(params.get("done", "")),
            "state_tags": views.STATE_TAGS,
            "state_labels": views.STATE_LABELS,
        },
        who=who,
        status_code=status_code,
    )


@router.get("/articles/{article_id}", response_class=HTMLResponse)
async def article_page(request: Request, article_id: str) -> Response:
    """The live text, the change under way, the history, a diff of any two revisions."""
    who = await staff(request)
    return await _article_page(request, who, _id(article_id))


Step = Callable[[Session, Person, FormData, int], T]


async def _act(
    request: Request, article_id: str, work: Step[T], *, done: str | Callable[[T], str]
) -> Response:
    """The common path of an article's buttons: role, CSRF, the step, then back to the page."""
    who = await staff(request)
    number = _id(article_id)
    form = await checked_form(request, who)
    try:
        result = await unit(request, lambda s: work(s, person(who), form, number))
    except workflow.WorkflowError as exc:
        return await _article_page(request, who, number, error=str(exc), status_code=_code(exc))
    outcome = done if isinstance(done, str) else done(result)
    if outcome.startswith("/"):
        return redirect(request, outcome)
    return redirect(request, f"{ARTICLES}/{number}?done={outcome}")


def _own_revision(session: Session, article_id: int, raw: str) -> int:
    revision = views.revision_view(session, int(raw)) if raw.isdigit() else None
    if revision is None or revision.article_id != article_id:
        raise workflow.NotFound("There is no such revision of this article.")
    return revision.id


@router.post("/articles/{article_id}/drafts")
async def start_draft(request: Request, article_id: str) -> Response:
    """Opens the article's draft (a new one copies the text served now)."""

    def work(session: Session, by: Person, _form: FormData, number: int) -> int:
        return workflow.start_draft(session, article_id=number, by=by).id

    return await _act(
        request,
        article_id,
        work,
        done=lambda revision_id: f"{ARTICLES}/{_id(article_id)}/revisions/{revision_id}/edit",
    )


@router.post("/articles/{article_id}/revisions/{revision_id}/submit")
async def submit(request: Request, article_id: str, revision_id: str) -> Response:
    """Sends the draft for review by a second person."""

    def work(session: Session, by: Person, _form: FormData, number: int) -> None:
        own = _own_revision(session, number, revision_id)
        workflow.submit(session, revision_id=own, by=by)

    return await _act(request, article_id, work, done="submitted")


@router.post("/articles/{article_id}/revisions/{revision_id}/withdraw")
async def withdraw(request: Request, article_id: str, revision_id: str) -> Response:
    """Takes a submission back to draft, cancels a schedule, or stops serving the text."""

    def work(session: Session, by: Person, _form: FormData, number: int) -> None:
        own = _own_revision(session, number, revision_id)
        workflow.withdraw(session, revision_id=own, by=by)

    return await _act(request, article_id, work, done="withdrawn")


@router.post("/articles/{article_id}/revisions/{revision_id}/discard")
async def discard(request: Request, article_id: str, revision_id: str) -> Response:
    """Abandons a draft (kept in the history)."""

    def work(session: Session, by: Person, _form: FormData, number: int) -> None:
        own = _own_revision(session, number, revision_id)
        workflow.discard(session, revision_id=own, by=by)

    return await _act(request, article_id, work, done="discarded")


@router.post("/articles/{article_id}/rollback")
async def rollback(request: Request, article_id: str) -> Response:
    """Restores an earlier revision's text as a new revision."""

    def work(session: Session, by: Person, form: FormData, number: int) -> bool:
        own = _own_revision(session, number, field(form, "revision_id"))
        copy = workflow.rollback(
            session, article_id=number, to_revision_id=own, by=by, note=field(form, "note")
        )
        return copy.published_at is not None

    return await _act(
        request,
        article_id,
        work,
        done=lambda published: "rolled-back" if published else "rolled-back-draft",
    )


# -- the editor ----------------------------------------------------------------------------


def _values(form: FormData, *, new: bool) -> dict[str, str]:
    names = ["title", "body", "source_url", "review_by", "example_questions", "change_note"]
    values = {name: field(form, name) for name in names}
    if new:
        values["topic"] = field(form, "topic")
        values["country"] = field(form, "country").strip().upper()
    return values


def _fields(values: dict[str, str]) -> workflow.Fields:
    return workflow.Fields(
        title=values["title"],
        body=values["body"],
        source_url=values["source_url"],
        review_by=values["review_by"],
        example_questions=values["example_questions"],
        change_note=values["change_note"],
    )


def _editor(
    request: Request,
    who: Who,
    *,
    values: dict[str, str],
    revision: views.RevisionView | None,
    errors: dict[str, str] | None = None,
    previewed: bool = False,
    status_code: int = 200,
) -> HTMLResponse:
    country = revision.country if revision else (values.get("country") or None)
    shown = views.preview(values.get("body", ""), country)
    return render(
        request,
        "admin/editor.html",
        {
            "section": "articles",
            "v": values,
            "revision": revision,
            "errors": errors or {},
            "preview": shown,
            "previewed": previewed,
            "topics": views.TOPIC_SLUGS,
            "max_body": workflow.MAX_BODY_LENGTH,
            "preview_country": country or "",
        },
        who=who,
        status_code=status_code,
    )


def _revision_values(revision: views.RevisionView) -> dict[str, str]:
    return {
        "title": revision.title,
        "body": revision.body,
        "source_url": revision.source_url,
        "review_by": revision.review_by.isoformat() if revision.review_by else "",
        "example_questions": "\n".join(revision.example_questions),
        "change_note": revision.change_note,
    }


async def _draft(request: Request, article_id: str, revision_id: str) -> views.RevisionView:
    number, revision_number = _id(article_id), _id(revision_id)
    revision = await unit(request, lambda s: views.revision_view(s, revision_number))
    if revision is None or revision.article_id != number:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="There is no such revision.")
    return revision


@router.get("/articles/{article_id}/revisions/{revision_id}/edit", response_class=HTMLResponse)
async def edit_page(request: Request, article_id: str, revision_id: str) -> Response:
    """The editor for a draft (other revisions are not editable: it says so)."""
    who = await staff(request)
    revision = await _draft(request, article_id, revision_id)
    if revision.status != "draft":
        return redirect(request, f"{ARTICLES}/{revision.article_id}")
    return _editor(request, who, values=_revision_values(revision), revision=revision)


@router.post("/articles/{article_id}/revisions/{revision_id}/edit", response_class=HTMLResponse)
async def edit(request: Request, article_id: str, revision_id: str) -> Response:
    """Saves the draft (and optionally submits it), or previews it without saving."""
    who = await staff(request)
    form = await checked_form(request, who)
    revision = await _draft(request, article_id, revision_id)
    values = _values(form, new=False)
    action = field(form, "action")
    if action == "preview":
        return _editor(request, who, values=values, revision=revision, previewed=True)
    checked = workflow.check(_fields(values), today=utcnow().date())
    if checked.draft is None:
        return _editor(
            request, who, values=values, revision=revision, errors=checked.errors, status_code=400
        )
    draft = checked.draft

    def save(session: Session) -> None:
        workflow.edit_draft(
            session,
            revision_id=revision.id,
            draft=draft,
            change_note=checked.change_note,
            by=person(who),
        )
        if action == "submit":
            workflow.submit(session, revision_id=revision.id, by=person(who))

    try:
        await unit(request, save)
    except workflow.WorkflowError as exc:
        errors = exc.errors if isinstance(exc, workflow.Invalid) else {"": str(exc)}
        return _editor(
            request, who, values=values, revision=revision, errors=errors, status_code=_code(exc)
        )
    if action == "submit":
        return redirect(request, f"{ARTICLES}/{revision.article_id}?done=submitted")
    return redirect(request, f"{ARTICLES}/{revision.article_id}?done=saved")


@router.post("/articles/preview")
async def preview(request: Request) -> Response:
    """The web chat and plain-text renderings of a body, for the editor's live preview."""
    who = await staff(request)
    form = await checked_form(request, who)
    body = field(form, "body")[: workflow.MAX_BODY_LENGTH * 2]
    country = field(form, "country").strip().upper()[:2] or None
    shown = views.preview(body, country)
    return JSONResponse(asdict(shown), headers={"Cache-Control": "no-store"})
