"""The review queue: a second person approves a change (now or at a set time) or sends it back.

Everyone who edits may see the queue; only reviewers and admins see the
approve and send-back forms, and never on a change they wrote or submitted.
The server refuses such an approval anyway (:func:`bot.guidance.workflow.approve`).
Times are entered in the reviewer's own time zone and stored in UTC.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from bot.admin import articles_views as views
from bot.admin.articles import field, person
from bot.admin.common import PREFIX, Who, checked_form, redirect, render, staff, unit
from bot.db.models import OfficerRole, utcnow
from bot.guidance import workflow

router = APIRouter(prefix=PREFIX, include_in_schema=False)

REVIEW: Final = f"{PREFIX}/review"
DONE: Final = {
    "approved": "The change has been approved and is now what citizens get.",
    "scheduled": "The change has been approved and will be published at the time you set.",
    "sent-back": "The change has been sent back to its author with your note.",
}


def parse_local(raw: str, tz: ZoneInfo) -> datetime | None:
    """A ``datetime-local`` value in the reviewer's zone, as an aware time (None if blank).

    Raises ValueError for anything that is not a date and time.
    """
    raw = raw.strip()
    if not raw:
        return None
    moment = datetime.fromisoformat(raw)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment


async def _queue(
    request: Request,
    who: Who,
    *,
    errors: dict[int, dict[str, str]] | None = None,
    values: dict[int, dict[str, str]] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    tz = views.zone(who.timezone)
    items = await unit(request, lambda s: views.review_queue(s, now=utcnow(), tz=tz))
    me = person(who)
    return render(
        request,
        "admin/review.html",
        {
            "section": "review",
            "items": items,
            "may_review": me.role in workflow.APPROVING_ROLES,
            "me": me.actor,
            "errors": errors or {},
            "values": values or {},
            "error": error,
            "done": None if error or errors else DONE.get(request.query_params.get("done", "")),
            "tz_name": tz.key,
            "state_tags": views.STATE_TAGS,
            "state_labels": views.STATE_LABELS,
        },
        who=who,
        status_code=status_code,
    )


@router.get("/review", response_class=HTMLResponse)
async def review_page(request: Request) -> Response:
    """Every change waiting for review, with its diff against the live text."""
    who = await staff(request)
    return await _queue(request, who)


def _revision_id(raw: str) -> int:
    if not raw.isdigit() or len(raw) > 12:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="There is no such revision.")
    return int(raw)


@router.post("/review/{revision_id}/approve", response_class=HTMLResponse)
async def approve(request: Request, revision_id: str) -> Response:
    """Publishes the change now, or schedules it; optionally with an expiry time."""
    who = await staff(request, OfficerRole.REVIEWER)
    form = await checked_form(request, who)
    number = _revision_id(revision_id)
    tz = views.zone(who.timezone)
    given = {name: field(form, name) for name in ("publish_at", "expires_at", "review_note")}
    errors: dict[str, str] = {}
    moments: dict[str, datetime | None] = {}
    for name, label in (("publish_at", "publication"), ("expires_at", "expiry")):
        try:
            moments[name] = parse_local(given[name], tz)
        except ValueError:
            errors[name] = f"Enter the {label} time as a date and time, or leave it blank"
    if errors:
        return await _queue(
            request, who, errors={number: errors}, values={number: given}, status_code=400
        )

    def work(session: Session) -> None:
        workflow.approve(
            session,
            revision_id=number,
            by=person(who),
            publish_at=moments["publish_at"],
            expires_at=moments["expires_at"],
            note=given["review_note"],
        )

    try:
        await unit(request, work)
    except workflow.Invalid as exc:
        return await _queue(
            request, who, errors={number: exc.errors}, values={number: given}, status_code=400
        )
    except workflow.NotAllowed as exc:
        return await _queue(request, who, error=str(exc), status_code=status.HTTP_403_FORBIDDEN)
    except workflow.WorkflowError as exc:
        code = 404 if isinstance(exc, workflow.NotFound) else status.HTTP_409_CONFLICT
        return await _queue(request, who, error=str(exc), status_code=code)
    scheduled = moments["publish_at"] is not None
    return redirect(request, f"{REVIEW}?done={'scheduled' if scheduled else 'approved'}")


@router.post("/review/{revision_id}/send-back", response_class=HTMLResponse)
async def send_back(request: Request, revision_id: str) -> Response:
    """Returns the change to its author as a draft, with what needs to change."""
    who = await staff(request, OfficerRole.REVIEWER)
    form = await checked_form(request, who)
    number = _revision_id(revision_id)
    note = field(form, "review_note")
    try:
        await unit(
            request,
            lambda s: workflow.send_back(s, revision_id=number, by=person(who), note=note),
        )
    except workflow.Invalid as exc:
        return await _queue(
            request,
            who,
            errors={number: exc.errors},
            values={number: {"review_note": note}},
            status_code=400,
        )
    except workflow.NotAllowed as exc:
        return await _queue(request, who, error=str(exc), status_code=status.HTTP_403_FORBIDDEN)
    except workflow.WorkflowError as exc:
        code = 404 if isinstance(exc, workflow.NotFound) else status.HTTP_409_CONFLICT
        return await _queue(request, who, error=str(exc), status_code=code)
    return redirect(request, f"{REVIEW}?done=sent-back")
