"""Data functions for guidance articles and their revisions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Protocol, TypeVar, cast

from sqlalchemy import bindparam, or_, select
from sqlalchemy.orm import Session

from bot.db.models import GuidanceArticle, GuidanceRevision, RevisionStatus, utcnow


class GuidanceError(ValueError):
    """A guidance change that is not allowed (e.g. a duplicate generic article)."""


@dataclass(frozen=True)
class RevisionDraft:
    """The editable content of a revision."""

    title: str
    body: str
    source_url: str
    last_reviewed: date
    review_by: date | None = None
    example_questions: tuple[str, ...] = ()


def find_article(*, session: Session, topic: str, country: str | None) -> GuidanceArticle | None:
    """The article for exactly this topic and country (None country: the generic one)."""
    query = select(GuidanceArticle).where(GuidanceArticle.topic == topic)
    query = query.where(
        GuidanceArticle.country.is_(None) if country is None else GuidanceArticle.country == country
    )
    return session.scalars(query).one_or_none()


def create_article(*, session: Session, topic: str, country: str | None) -> GuidanceArticle:
    """A new, empty article; refuses a second article for the same topic and country."""
    if find_article(session=session, topic=topic, country=country) is not None:
        where = country or "generic"
        raise GuidanceError(f"an article for {topic} ({where}) already exists")
    article = GuidanceArticle(topic=topic, country=country)
    session.add(article)
    session.flush()
    return article


def add_revision(
    *,
    session: Session,
    article: GuidanceArticle,
    draft: RevisionDraft,
    author: str,
    change_note: str = "",
    is_sample: bool = False,
) -> GuidanceRevision:
    """A new draft revision, numbered after the article's last one."""
    last = session.scalar(
        select(GuidanceRevision.number)
        .where(GuidanceRevision.article_id == article.id)
        .order_by(GuidanceRevision.number.desc())
        .limit(1)
    )
    revision = GuidanceRevision(
        article_id=article.id,
        number=(last or 0) + 1,
        status=RevisionStatus.DRAFT,
        title=draft.title,
        body=draft.body,
        source_url=draft.source_url,
        last_reviewed=draft.last_reviewed,
        review_by=draft.review_by,
        example_questions=list(draft.example_questions),
        author=author,
        change_note=change_note,
        is_sample=is_sample,
    )
    session.add(revision)
    session.flush()
    return revision


def publish_revision(
    *, session: Session, revision: GuidanceRevision, reviewer: str, now: datetime | None = None
) -> GuidanceRevision:
    """Makes ``revision`` the one served from now; earlier publications are archived.

    For the importer and the seed, which publish reviewed content directly;
    people publish through :mod:`bot.guidance.workflow`, which asks for a
    second person's approval.
    """
    now = now or utcnow()
    revision.status = RevisionStatus.PUBLISHED
    revision.reviewer = reviewer
    revision.published_at = now
    revision.publish_at = now
    archive_superseded(session=session, article_id=revision.article_id, keep=revision, now=now)
    session.flush()
    return revision


def archive_superseded(
    *, session: Session, article_id: int, keep: GuidanceRevision, now: datetime
) -> int:
    """Archives the article's publications that started before ``keep`` (it replaces them).

    Scheduled publications (starting later) stay, so a schedule set by a
    reviewer still takes effect.
    """
    archived = 0
    for other in published_revisions(session=session, article_id=article_id):
        if other.id != keep.id and starts(other) <= now:
            other.status = RevisionStatus.ARCHIVED
            archived += 1
    session.flush()
    return archived


def published_revisions(*, session: Session, article_id: int) -> list[GuidanceRevision]:
    """The article's revisions with status published: live, scheduled, expired or superseded."""
    return list(
        session.scalars(
            select(GuidanceRevision)
            .where(
                GuidanceRevision.article_id == article_id,
                GuidanceRevision.status == RevisionStatus.PUBLISHED,
            )
            .order_by(GuidanceRevision.number)
        )
    )


class Scheduled(Protocol):
    """What deciding whether a published revision is live reads of it."""

    @property
    def number(self) -> int: ...
    @property
    def publish_at(self) -> datetime | None: ...
    @property
    def published_at(self) -> datetime | None: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def expires_at(self) -> datetime | None: ...


S = TypeVar("S", bound=Scheduled)


def starts(revision: Scheduled) -> datetime:
    """When a published revision goes (or went) live."""
    moment = revision.publish_at or revision.published_at or revision.created_at
    return aware(moment)


def aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def current_publication(revisions: list[S], now: datetime) -> S | None:
    """Of an article's published revisions, the latest to have started (expired or not)."""
    started = [revision for revision in revisions if starts(revision) <= now]
    if not started:
        return None
    return max(started, key=lambda revision: (starts(revision), revision.number))


def is_expired(revision: Scheduled, now: datetime) -> bool:
    """Past its expiry time."""
    return revision.expires_at is not None and aware(revision.expires_at) <= now


def live_revision(
    *, session: Session, article_id: int, now: datetime | None = None
) -> GuidanceRevision | None:
    """What the article serves now: its latest started publication, unless that has expired.

    When the latest publication has expired the article serves nothing: an
    older text is never brought back by an expiry (it may be out of date).
    """
    now = now or utcnow()
    latest = current_publication(published_revisions(session=session, article_id=article_id), now)
    if latest is None or is_expired(latest, now):
        return None
    return latest


def published_revision(*, session: Session, article_id: int) -> GuidanceRevision | None:
    """The article's live revision, if it has one (see :func:`live_revision`)."""
    return live_revision(session=session, article_id=article_id)


@dataclass(frozen=True)
class Served:
    """The revision a citizen is shown, with what the answer needs of it and its article."""

    topic: str
    article_id: int
    article_country: str | None
    revision_id: int
    number: int
    title: str
    body: str
    source_url: str
    last_reviewed: date
    review_by: date | None
    is_sample: bool
    publish_at: datetime | None
    published_at: datetime | None
    created_at: datetime
    expires_at: datetime | None


# Every published revision of the topic's country and generic articles, in
# one prepared statement (a None country matches only the generic article).
_SERVABLE = (
    select(
        GuidanceArticle.topic,
        GuidanceArticle.id,
        GuidanceArticle.country,
        GuidanceRevision.id,
        GuidanceRevision.number,
        GuidanceRevision.title,
        GuidanceRevision.body,
        GuidanceRevision.source_url,
        GuidanceRevision.last_reviewed,
        GuidanceRevision.review_by,
        GuidanceRevision.is_sample,
        GuidanceRevision.publish_at,
        GuidanceRevision.published_at,
        GuidanceRevision.created_at,
        GuidanceRevision.expires_at,
    )
    .join(GuidanceRevision, GuidanceRevision.article_id == GuidanceArticle.id)
    .where(
        GuidanceArticle.topic == bindparam("topic"),
        GuidanceRevision.status == RevisionStatus.PUBLISHED,
        or_(GuidanceArticle.country == bindparam("country"), GuidanceArticle.country.is_(None)),
    )
)


def served_revision(
    *, session: Session, topic: str, country: str | None, now: datetime | None = None
) -> Served | None:
    """What a citizen asking about ``topic`` in ``country`` is shown.

    The country's own article wins when it has a live revision; otherwise the
    generic one. Drafts, revisions in review, scheduled revisions not yet
    started, expired and archived revisions are never returned. Read from the
    database on every call: nothing is cached, so a publication is served at once.
    Read as plain rows on the session's connection: the action server asks
    for it on every guidance answer.
    """
    now = now or utcnow()
    rows = session.connection().execute(_SERVABLE, {"topic": topic, "country": country})
    by_article: dict[int, list[Served]] = {}
    for row in rows:
        served = Served(*cast(tuple[Any, ...], row))
        by_article.setdefault(served.article_id, []).append(served)
    live: list[Served] = []
    for revisions in by_article.values():
        latest = current_publication(revisions, now)
        if latest is not None and not is_expired(latest, now):
            live.append(latest)
    if not live:
        return None
    # A country-specific article sorts before the generic one.
    return min(live, key=lambda served: served.article_country is None)
