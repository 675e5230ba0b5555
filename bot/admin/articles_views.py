"""What the admin's article and review pages show, read from the database in one unit of work.

Kept apart from the routes so that the pages' facts (an article's state, what
is live, what is overdue for review) are plain data that tests can check.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from bot.catalogue import TOPICS
from bot.db.models import GuidanceArticle, GuidanceRevision, RevisionStatus
from bot.geo.gazetteer import country_name
from bot.guidance import store, workflow
from bot.guidance.render import fill, to_html, to_plain

DUE_SOON: Final = timedelta(days=30)
ARTICLE_STATES: Final = {
    "draft": "Draft",
    "in_review": "In review",
    "scheduled": "Scheduled",
    "published": "Published",
    "expired": "Expired",
}
REVIEW_FILTERS: Final = {"overdue": "Past review-by date", "due-soon": "Due within 30 days"}
STATE_TAGS: Final = {
    "draft": "govuk-tag--grey",
    "in_review": "govuk-tag--yellow",
    "scheduled": "govuk-tag--blue",
    "published": "govuk-tag--green",
    "expired": "govuk-tag--red",
    "archived": "govuk-tag--grey",
}
STATE_LABELS: Final = {**ARTICLE_STATES, "archived": "Archived"}
TOPIC_SLUGS: Final = tuple(topic.slug for topic in TOPICS)


def zone(name: str) -> ZoneInfo:
    """The staff member's time zone (London when theirs is unknown)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("Europe/London")


def when(moment: datetime | None, tz: ZoneInfo) -> str:
    """A time as staff read it, in their zone: "1 December 2026, 14:05"."""
    if moment is None:
        return ""
    local = store.aware(moment).astimezone(tz)
    return f"{local.day} {local:%B %Y, %H:%M}"


def where(country: str | None) -> str:
    """An article's country variant, for people."""
    if country is None:
        return "All countries"
    try:
        return f"{country_name(country)} ({country})"
    except KeyError:
        return country


@dataclass(frozen=True)
class Preview:
    """How a text looks to citizens: sanitised HTML (web chat) and plain text."""

    html: str
    plain: str


def preview(body: str, country: str | None) -> Preview:
    """The channel renderings of a Markdown body, as the guidance API would serve it."""
    name = None
    if country:
        try:
            name = country_name(country)
        except KeyError:
            name = None
    filled = fill(body, country_name=name)
    return Preview(html=to_html(filled), plain=to_plain(filled))


# -- the list ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    """The list's filters, as given in the query string (unknown values ignored)."""

    topic: str = ""
    country: str = ""
    status: str = ""
    review: str = ""
    q: str = ""

    @classmethod
    def from_query(cls, params: dict[str, str]) -> Filters:
        topic = params.get("topic", "")
        status = params.get("status", "")
        review = params.get("review", "")
        return cls(
            topic=topic if topic in TOPIC_SLUGS else "",
            country=params.get("country", "").strip().upper()[:7],
            status=status if status in ARTICLE_STATES else "",
            review=review if review in REVIEW_FILTERS else "",
            q=" ".join(params.get("q", "").split())[:200],
        )

    @property
    def active(self) -> bool:
        return any((self.topic, self.country, self.status, self.review, self.q))


@dataclass
class ArticleRow:
    """One article in the list."""

    id: int
    topic: str
    country: str | None
    where: str
    title: str
    states: list[str]
    review_by: date | None
    overdue: bool
    due_soon: bool
    updated: str
    search_text: str = field(repr=False, default="")


def article_states(
    revisions: list[GuidanceRevision], live_id: int | None, now: datetime
) -> list[str]:
    """The article's states for the list: what is live, scheduled, under way or expired."""
    states = {workflow.state(revision, live_id, now) for revision in revisions}
    if live_id is None and store.current_publication(
        [r for r in revisions if r.status == RevisionStatus.PUBLISHED], now
    ):
        states.add("expired")
    elif live_id is not None:
        states.discard("expired")
    return [key for key in ARTICLE_STATES if key in states]


def list_articles(
    session: Session, filters: Filters, *, now: datetime, tz: ZoneInfo
) -> list[ArticleRow]:
    """Every article with its states and review-by date, filtered, by topic then country."""
    articles = session.scalars(
        select(GuidanceArticle).options(selectinload(GuidanceArticle.revisions))
    ).all()
    today = now.astimezone(tz).date()
    rows = []
    for article in articles:
        revisions = list(article.revisions)
        if not revisions:
            continue
        published = [r for r in revisions if r.status == RevisionStatus.PUBLISHED]
        current = store.current_publication(published, now)
        live = current if current is not None and not store.is_expired(current, now) else None
        shown = live or revisions[-1]
        review_by = shown.review_by
        rows.append(
            ArticleRow(
                id=article.id,
                topic=article.topic,
                country=article.country,
                where=where(article.country),
                title=shown.title,
                states=article_states(revisions, live.id if live else None, now),
                review_by=review_by,
                overdue=review_by is not None and review_by < today,
                due_soon=review_by is not None and today <= review_by <= today + DUE_SOON,
                updated=when(revisions[-1].created_at, tz),
                search_text=" ".join(
                    [shown.title, shown.body, *(shown.example_questions or [])]
                    + [r.title for r in revisions if r.status != RevisionStatus.ARCHIVED]
                ).casefold(),
            )
        )
    rows = [row for row in rows if _matches(row, filters)]
    rows.sort(key=lambda row: (row.topic, row.country is not None, row.country or ""))
    return rows


def _matches(row: ArticleRow, filters: Filters) -> bool:
    if filters.topic and row.topic != filters.topic:
        return False
    if filters.country:
        wanted = None if filters.country in {"GENERIC", "ALL"} else filters.country
        if row.country != wanted:
            return False
    if filters.status and filters.status not in row.states:
        return False
    if filters.review == "overdue" and not row.overdue:
        return False
    if filters.review == "due-soon" and not row.due_soon:
        return False
    return not filters.q or all(word in row.search_text for word in filters.q.casefold().split())


# -- one article ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RevisionRow:
    """One revision in an article's history."""

    id: int
    number: int
    state: str
    title: str
    author: str
    created: str
    change_note: str
    submitted_by: str | None
    submitted: str
    reviewer: str | None
    review_note: str
    published: str
    publish_at: str
    expires_at: str
    restored_from: int | None
    once_published: bool


@dataclass
class ArticlePage:
    """An article, its live text and its whole history (newest first)."""

    id: int
    topic: str
    country: str | None
    where: str
    live: RevisionRow | None
    live_preview: Preview | None
    open: RevisionRow | None
    history: list[RevisionRow]
    review_by: date | None
    overdue: bool


def _row(
    revision: GuidanceRevision, live_id: int | None, now: datetime, tz: ZoneInfo
) -> RevisionRow:
    return RevisionRow(
        id=revision.id,
        number=revision.number,
        state=workflow.state(revision, live_id, now),
        title=revision.title,
        author=_person(revision.author),
        created=when(revision.created_at, tz),
        change_note=revision.change_note,
        submitted_by=_person(revision.submitted_by) if revision.submitted_by else None,
        submitted=when(revision.submitted_at, tz),
        reviewer=_person(revision.reviewer) if revision.reviewer else None,
        review_note=revision.review_note,
        published=when(revision.published_at, tz),
        publish_at=when(revision.publish_at, tz),
        expires_at=when(revision.expires_at, tz),
        restored_from=revision.restored_from,
        once_published=revision.published_at is not None and revision.reviewer is not None,
    )


def _person(actor: str | None) -> str:
    """An audit actor for display: "staff:ann@x" -> "ann@x"."""
    if not actor:
        return ""
    return actor.split(":", 1)[1] if actor.startswith("staff:") else actor


def article_page(
    session: Session, article_id: int, *, now: datetime, tz: ZoneInfo
) -> ArticlePage | None:
    """Everything the article page shows, or None when there is no such article."""
    article = session.get(GuidanceArticle, article_id)
    if article is None:
        return None
    live = store.live_revision(session=session, article_id=article.id, now=now)
    live_id = live.id if live else None
    revisions = list(article.revisions)
    under_way = workflow.open_revision(session, article.id)
    shown = live or (revisions[-1] if revisions else None)
    today = now.astimezone(tz).date()
    review_by = shown.review_by if shown else None
    return ArticlePage(
        id=article.id,
        topic=article.topic,
        country=article.country,
        where=where(article.country),
        live=_row(live, live_id, now, tz) if live else None,
        live_preview=preview(live.body, article.country) if live else None,
        open=_row(under_way, live_id, now, tz) if under_way else None,
        history=[_row(r, live_id, now, tz) for r in reversed(revisions)],
        review_by=review_by,
        overdue=review_by is not None and review_by < today,
    )


@dataclass(frozen=True)
class RevisionView:
    """One revision's full content, for the editor and the review queue."""

    id: int
    article_id: int
    number: int
    status: str
    title: str
    body: str
    source_url: str
    review_by: date | None
    example_questions: list[str]
    change_note: str
    review_note: str
    author: str
    submitted_by: str | None
    topic: str
    country: str | None
    where: str


def revision_view(session: Session, revision_id: int) -> RevisionView | None:
    """A revision and its article's topic and country, or None."""
    revision = session.get(GuidanceRevision, revision_id)
    if revision is None:
        return None
    article = revision.article
    return RevisionView(
        id=revision.id,
        article_id=revision.article_id,
        number=revision.number,
        status=revision.status.value,
        title=revision.title,
        body=revision.body,
        source_url=revision.source_url,
        review_by=revision.review_by,
        example_questions=list(revision.example_questions or []),
        change_note=revision.change_note,
        review_note=revision.review_note,
        author=revision.author,
        submitted_by=revision.submitted_by,
        topic=article.topic,
        country=article.country,
        where=where(article.country),
    )


@dataclass(frozen=True)
class Comparison:
    """Two revisions of one article side by side, field by field."""

    old: RevisionRow
    new: RevisionRow
    fields: list[workflow.FieldDiff]


def compare(
    session: Session, article_id: int, old_id: int, new_id: int, *, now: datetime, tz: ZoneInfo
) -> Comparison | None:
    """The diff between two revisions of the article (None if either is not one of its own)."""
    old = session.get(GuidanceRevision, old_id)
    new = session.get(GuidanceRevision, new_id)
    if old is None or new is None or {old.article_id, new.article_id} != {article_id}:
        return None
    live = store.live_revision(session=session, article_id=article_id, now=now)
    live_id = live.id if live else None
    return Comparison(
        old=_row(old, live_id, now, tz),
        new=_row(new, live_id, now, tz),
        fields=workflow.diff(old, new),
    )


# -- the review queue ----------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewItem:
    """A revision waiting for review, with what it changes against the live text."""

    revision: RevisionRow
    article_id: int
    topic: str
    where: str
    author_actor: str
    submitter_actor: str | None
    against: RevisionRow | None
    fields: list[workflow.FieldDiff]
    preview: Preview


def review_queue(session: Session, *, now: datetime, tz: ZoneInfo) -> list[ReviewItem]:
    """Every revision in review, oldest submission first."""
    waiting = session.scalars(
        select(GuidanceRevision)
        .where(GuidanceRevision.status == RevisionStatus.IN_REVIEW)
        .order_by(GuidanceRevision.submitted_at, GuidanceRevision.id)
    ).all()
    items = []
    for revision in waiting:
        article = revision.article
        live = store.live_revision(session=session, article_id=article.id, now=now)
        live_id = live.id if live else None
        items.append(
            ReviewItem(
                revision=_row(revision, live_id, now, tz),
                article_id=article.id,
                topic=article.topic,
                where=where(article.country),
                author_actor=revision.author,
                submitter_actor=revision.submitted_by,
                against=_row(live, live_id, now, tz) if live else None,
                fields=workflow.diff(live, revision) if live else [],
                preview=preview(revision.body, article.country),
            )
        )
    return items
