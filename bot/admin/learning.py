"""Learning from use, in the guidance admin: helpfulness results and unanswered questions.

Feedback shows how citizens answered "Was this helpful?" per article (and
per revision and channel) over a date range, least helpful first, counted in
SQL by :mod:`bot.guidance.feedback_stats`.

Unanswered questions are messages the assistant fell back on (out of scope
or not understood), grouped by :mod:`bot.guidance.unanswered` so that an
editor sees what is missing. For each group they can add the questions to an
article as example questions (a draft that goes through review), start a new
article with them, or dismiss them; each action resolves exactly the
questions the page showed and is audited (without the citizens' words).
The texts are citizens' own: pages escape them and nothing logs them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Final
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from bot import audit
from bot.admin.common import PREFIX, Who, actor, checked_form, redirect, render, staff, unit
from bot.catalogue import TOPICS
from bot.db.models import GuidanceArticle, GuidanceRevision, OfficerRole, utcnow
from bot.geo.gazetteer import country_name
from bot.guidance import feedback_stats, unanswered, workflow
from bot.guidance.feedback_stats import ORDERS, Order, Period

router = APIRouter(prefix=PREFIX, include_in_schema=False)

DEFAULT_DAYS: Final = 30
MAX_RANGE_DAYS: Final = 366 * 3
GROUPS_SHOWN: Final = 100
# Examples carried into a new article's form (the link's length stays modest).
NEW_ARTICLE_EXAMPLES: Final = 10
ORDER_LABELS: Final[dict[Order, str]] = {
    "least-helpful": "Least helpful first",
    "most-helpful": "Most helpful first",
    "most-answers": "Most answers first",
}
CHANNEL_LABELS: Final = {
    "webchat": "Web chat",
    "whatsapp": "WhatsApp",
    "telegram": "Telegram",
    "sms": "SMS",
}
REASON_LABELS: Final = {
    "out_of_scope": "Out of scope",
    "misunderstood": "Not understood",
}
DONE: Final = {
    "dismissed": "The questions have been dismissed.",
    "new-article": "The questions have been marked as used for a new article.",
}


def where(country: str | None) -> str:
    """An article's country as staff read it ("All countries" for the generic one)."""
    if not country:
        return "All countries"
    try:
        return country_name(country)
    except KeyError:
        return country


# -- feedback ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedbackQuery:
    """The feedback page's filters, read from the query string with their errors."""

    start: date
    end: date
    by_revision: bool
    by_channel: bool
    order: Order
    errors: Mapping[str, str]

    @classmethod
    def read(cls, request: Request, today: date) -> FeedbackQuery:
        params = request.query_params
        errors: dict[str, str] = {}
        end = _date(params.get("to", ""), today, "to", "end", errors)
        start = _date(
            params.get("from", ""), end - timedelta(days=DEFAULT_DAYS), "from", "start", errors
        )
        if not errors and start > end:
            errors["from"] = "The start date must be on or before the end date"
        elif not errors and (end - start).days > MAX_RANGE_DAYS:
            errors["from"] = "Choose a period of at most 3 years"
        if errors:
            start, end = today - timedelta(days=DEFAULT_DAYS), today
        split = params.getlist("split")
        raw_order = params.get("order", "least-helpful")
        order: Order = next((item for item in ORDERS if item == raw_order), "least-helpful")
        return cls(
            start=start,
            end=end,
            by_revision="revision" in split,
            by_channel="channel" in split,
            order=order,
            errors=errors,
        )


def _date(raw: str, default: date, name: str, which: str, errors: dict[str, str]) -> date:
    raw = raw.strip()
    if not raw:
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError:
        errors[name] = f"Enter the {which} date as a real date, like 2026-11-30"
        return default


@router.get("/feedback")
async def feedback_page(request: Request) -> Response:
    """Yes and no answers per article, over a date range, least helpful first by default."""
    who = await staff(request)
    query = FeedbackQuery.read(request, utcnow().date())
    period = Period(start=query.start, end=query.end)

    def read(session: Session) -> tuple[list[feedback_stats.Helpfulness], tuple[int, int]]:
        rows = feedback_stats.helpfulness(
            session=session,
            period=period,
            by_revision=query.by_revision,
            by_channel=query.by_channel,
            order=query.order,
        )
        return rows, feedback_stats.totals(session=session, period=period)

    rows, (yes, no) = await unit(request, read)
    return render(
        request,
        "admin/learning/feedback.html",
        {
            "section": "feedback",
            "query": query,
            "rows": rows,
            "yes": yes,
            "no": no,
            "orders": ORDER_LABELS,
            "channels": CHANNEL_LABELS,
            "where": where,
            "errors": dict(query.errors),
            "max_rows": feedback_stats.MAX_ROWS,
        },
        who=who,
    )


# -- unanswered questions ------------------------------------------------------------------


@dataclass(frozen=True)
class ArticleChoice:
    """An article an editor can add example questions to."""

    id: int
    label: str


def _article_choices(session: Session) -> list[ArticleChoice]:
    """Every article, by topic then country, named by its latest title."""
    titles: dict[int, str] = {}
    revisions = session.execute(
        select(GuidanceRevision.article_id, GuidanceRevision.title).order_by(
            GuidanceRevision.article_id, GuidanceRevision.number
        )
    )
    for article_id, title in revisions:
        titles[int(article_id)] = title  # the last (highest number) wins
    articles = session.scalars(
        select(GuidanceArticle).order_by(GuidanceArticle.topic, GuidanceArticle.country)
    )
    return [
        ArticleChoice(
            article.id,
            f"{article.topic} ({where(article.country)}): {titles.get(article.id, 'untitled')}",
        )
        for article in articles
    ]


async def _unanswered_page(
    request: Request,
    who: Who,
    *,
    errors: Mapping[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    def read(session: Session) -> tuple[list[unanswered.Group], int, list[ArticleChoice]]:
        questions = unanswered.recent_unresolved(session=session)
        groups = unanswered.group_questions(questions)
        return groups, len(questions), _article_choices(session)

    groups, total, articles = await unit(request, read)
    return render(
        request,
        "admin/learning/unanswered.html",
        {
            "section": "unanswered",
            "groups": groups[:GROUPS_SHOWN],
            "more_groups": max(0, len(groups) - GROUPS_SHOWN),
            "total": total,
            "window_days": unanswered.WINDOW_DAYS,
            "limit": unanswered.LIMIT,
            "articles": articles,
            "topics": [topic.slug for topic in TOPICS],
            "channels": CHANNEL_LABELS,
            "reasons": REASON_LABELS,
            "errors": dict(errors or {}),
            "done": None if errors else _done(request),
            "done_article": _int(request.query_params.get("article", "")),
        },
        who=who,
        status_code=status_code,
    )


def _done(request: Request) -> str | None:
    done = request.query_params.get("done", "")
    if done == "examples":
        added = _int(request.query_params.get("added", "")) or 0
        return (
            f"{added} example question{'' if added == 1 else 's'} added to a draft of the "
            "article. Submit the draft for review from the article's page."
            if added
            else "The article already had these questions; nothing new was added."
        )
    return DONE.get(done)


def _int(raw: str) -> int | None:
    return int(raw) if raw.isdigit() and len(raw) < 12 else None


@router.get("/unanswered")
async def unanswered_page(request: Request) -> Response:
    """Open questions of the last few months, similar ones grouped, largest groups first."""
    who = await staff(request)
    return await _unanswered_page(request, who)


def _ids(form: FormData) -> list[int]:
    ids = [_int(value) for value in form.getlist("question_id") if isinstance(value, str)]
    return [number for number in ids if number is not None][: unanswered.MAX_IDS_PER_ACTION]


def _record(session: Session, who: Who, resolution: str, count: int, **details: Any) -> None:
    # Counts and ids only: the questions are citizens' words.
    audit.record(
        session=session,
        actor=actor(who),
        action="admin.unanswered_resolved",
        subject=f"unanswered:{resolution}",
        details={"resolution": resolution, "questions": count, **details},
    )


async def _refuse(request: Request, who: Who, errors: dict[str, str], code: int) -> Response:
    # Every group has its own form, so the summary names the problem without a link.
    message = " ".join(errors.values())
    return await _unanswered_page(request, who, errors={"": message}, status_code=code)


@router.post("/unanswered/examples")
async def add_as_examples(request: Request) -> Response:
    """Adds a group's questions to a draft of the chosen article, for review."""
    who = await staff(request)
    form = await checked_form(request, who)
    ids = _ids(form)
    raw_article = form.get("article_id")
    article_id = _int(raw_article) if isinstance(raw_article, str) else None
    if article_id is None:
        return await _refuse(
            request, who, {"article_id": "Choose the article to add the questions to"}, 400
        )
    by = workflow.Person(actor(who), OfficerRole(who.role))

    def work(session: Session) -> unanswered.Added:
        added = unanswered.add_to_article(session=session, article_id=article_id, ids=ids, by=by)
        _record(
            session,
            who,
            unanswered.RESOLVED_AS_EXAMPLES,
            added.resolved,
            article_id=added.article_id,
            revision_id=added.revision_id,
            added=added.added,
        )
        return added

    try:
        result = await unit(request, work)
    except workflow.WorkflowError as exc:
        errors = exc.errors if isinstance(exc, workflow.Invalid) else {"": str(exc)}
        code = status.HTTP_409_CONFLICT if isinstance(exc, workflow.Conflict) else 400
        if isinstance(exc, workflow.NotFound):
            code = status.HTTP_404_NOT_FOUND
        return await _refuse(request, who, errors, code)
    query = urlencode({"done": "examples", "added": result.added, "article": result.article_id})
    return redirect(request, f"{PREFIX}/unanswered?{query}")


@router.post("/unanswered/new-article")
async def start_new_article(request: Request) -> Response:
    """Resolves the group and opens the new-article form with its questions filled in."""
    who = await staff(request)
    form = await checked_form(request, who)
    ids = _ids(form)
    raw_topic = form.get("topic")
    topic = raw_topic if isinstance(raw_topic, str) else ""
    if topic and topic not in {item.slug for item in TOPICS}:
        return await _refuse(request, who, {"topic": "Choose a topic from the list"}, 400)

    def work(session: Session) -> list[str]:
        questions = unanswered.open_questions(session=session, ids=ids)
        texts = [q.text for q in questions]
        resolved = unanswered.resolve(
            session=session,
            ids=[q.id for q in questions],
            actor=actor(who),
            resolution=unanswered.RESOLVED_AS_NEW_ARTICLE,
        )
        if resolved:
            _record(session, who, unanswered.RESOLVED_AS_NEW_ARTICLE, resolved, topic=topic)
        return texts

    texts = await unit(request, work)
    if not texts:
        return await _refuse(
            request, who, {"": "These questions have already been dealt with."}, 409
        )
    return redirect(request, new_article_link(topic, texts))


def new_article_link(topic: str, texts: list[str]) -> str:
    """The new-article form, prefilled with the topic and (some of) the questions."""
    examples = unanswered.merge_examples(
        [],
        [text.replace("|", " ") for text in texts if len(text) <= unanswered.MAX_QUESTION_LENGTH],
    )[:NEW_ARTICLE_EXAMPLES]
    params = {"examples": "|".join(examples)}
    if topic:
        params = {"topic": topic, **params}
    return f"{PREFIX}/articles/new?{urlencode(params)}"


@router.post("/unanswered/dismiss")
async def dismiss(request: Request) -> Response:
    """Resolves a group without using it (spam, greetings, things nobody can answer)."""
    who = await staff(request)
    form = await checked_form(request, who)
    ids = _ids(form)
    if not ids:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail="No questions were chosen.")

    def work(session: Session) -> int:
        resolved = unanswered.resolve(
            session=session,
            ids=ids,
            actor=actor(who),
            resolution=unanswered.RESOLVED_AS_DISMISSED,
        )
        if resolved:
            _record(session, who, unanswered.RESOLVED_AS_DISMISSED, resolved)
        return resolved

    await unit(request, work)
    return redirect(request, f"{PREFIX}/unanswered?done=dismissed")
