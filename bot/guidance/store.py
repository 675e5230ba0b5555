"""Data functions for guidance articles and their revisions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
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
    *, session: Session, revision: GuidanceRevision, reviewer: str
) -> GuidanceRevision:
    """Makes ``revision`` the one served; the previously published one is archived."""
    current = published_revision(session=session, article_id=revision.article_id)
    if current is not None and current.id != revision.id:
        current.status = RevisionStatus.ARCHIVED
    revision.status = RevisionStatus.PUBLISHED
    revision.reviewer = reviewer
    revision.published_at = utcnow()
    session.flush()
    return revision


def published_revision(*, session: Session, article_id: int) -> GuidanceRevision | None:
    """The article's published revision, if it has one."""
    return session.scalars(
        select(GuidanceRevision).where(
            GuidanceRevision.article_id == article_id,
            GuidanceRevision.status == RevisionStatus.PUBLISHED,
        )
    ).first()


def served_revision(
    *, session: Session, topic: str, country: str | None
) -> tuple[GuidanceArticle, GuidanceRevision] | None:
    """What a citizen asking about ``topic`` in ``country`` is shown.

    The country's own published article wins; otherwise the generic one.
    Drafts, revisions in review and archived revisions are never returned.
    """
    query = (
        select(GuidanceArticle, GuidanceRevision)
        .join(GuidanceRevision, GuidanceRevision.article_id == GuidanceArticle.id)
        .where(
            GuidanceArticle.topic == topic,
            GuidanceRevision.status == RevisionStatus.PUBLISHED,
        )
    )
    if country is None:
        query = query.where(GuidanceArticle.country.is_(None))
    else:
        query = query.where(
            (GuidanceArticle.country == country) | GuidanceArticle.country.is_(None)
        )
    rows = session.execute(query).all()
    if not rows:
        return None
    # A country-specific article sorts before the generic one.
    article, revision = min(rows, key=lambda row: row[0].country is None)
    return article, revision
