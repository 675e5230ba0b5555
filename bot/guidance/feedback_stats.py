"""How helpful citizens found each article: "Was this helpful?" answers, counted in SQL.

The admin page shows yes and no counts and the share helpful per article
(optionally per revision and per channel) over a date range, least helpful
first by default, so an editor sees which answer to rework. Counting is one
GROUP BY query: the table grows with every answer and is never read row by
row into Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from sqlalchemy import Integer, case, func, select
from sqlalchemy.orm import Session

from bot.db.models import GuidanceArticle, GuidanceFeedback, GuidanceRevision

Order = Literal["least-helpful", "most-helpful", "most-answers"]
ORDERS: tuple[Order, ...] = ("least-helpful", "most-helpful", "most-answers")
MAX_ROWS = 1000


@dataclass(frozen=True)
class Helpfulness:
    """Yes and no answers for one article (and revision, and channel, when split)."""

    article_id: int
    topic: str
    country: str | None
    title: str
    revision_number: int | None
    channel: str | None
    yes: int
    no: int

    @property
    def answers(self) -> int:
        return self.yes + self.no

    @property
    def share_helpful(self) -> float:
        """From 0 to 1; 0 when nobody answered (such rows are never returned)."""
        return self.yes / self.answers if self.answers else 0.0

    @property
    def percent(self) -> int:
        return round(100 * self.share_helpful)


@dataclass(frozen=True)
class Period:
    """A date range, both days included, in UTC."""

    start: date | None = None
    end: date | None = None

    def bounds(self) -> tuple[datetime | None, datetime | None]:
        begin = datetime.combine(self.start, time.min, UTC) if self.start else None
        stop = datetime.combine(self.end + timedelta(days=1), time.min, UTC) if self.end else None
        return begin, stop


def helpfulness(
    *,
    session: Session,
    period: Period = Period(),
    by_revision: bool = False,
    by_channel: bool = False,
    order: Order = "least-helpful",
    limit: int = MAX_ROWS,
) -> list[Helpfulness]:
    """Yes/no counts grouped by article (and revision, and channel), sorted by ``order``.

    The title is the answered revision's when split by revision, otherwise
    that of the article's latest revision anyone answered about.
    """
    feedback = GuidanceFeedback
    yes = func.sum(case((feedback.helpful.is_(True), 1), else_=0)).label("yes")
    no = func.sum(case((feedback.helpful.is_(False), 1), else_=0)).label("no")
    total = func.count(feedback.id)
    keys: list[Any] = [feedback.article_id]
    if by_revision:
        keys.append(feedback.revision_id)
    if by_channel:
        keys.append(feedback.channel)
    latest = func.max(feedback.revision_id).label("revision_id")
    query = select(*keys, latest, yes, no).group_by(*keys)
    begin, stop = period.bounds()
    if begin is not None:
        query = query.where(feedback.created_at >= begin)
    if stop is not None:
        query = query.where(feedback.created_at < stop)
    share = func.sum(case((feedback.helpful.is_(True), 1), else_=0)) * 1.0 / total
    if order == "least-helpful":
        query = query.order_by(share.asc(), total.desc(), feedback.article_id)
    elif order == "most-helpful":
        query = query.order_by(share.desc(), total.desc(), feedback.article_id)
    else:
        query = query.order_by(total.desc(), share.asc(), feedback.article_id)
    counted = session.execute(query.limit(limit)).mappings().all()
    if not counted:
        return []
    articles = _articles(session, {int(row["article_id"]) for row in counted})
    revisions = _revisions(session, {int(row["revision_id"]) for row in counted})
    rows: list[Helpfulness] = []
    for row in counted:
        topic, country = articles[int(row["article_id"])]
        title, number = revisions.get(int(row["revision_id"]), ("", 0))
        rows.append(
            Helpfulness(
                article_id=int(row["article_id"]),
                topic=topic,
                country=country,
                title=title,
                revision_number=number if by_revision else None,
                channel=str(row["channel"]) if by_channel else None,
                yes=int(row["yes"] or 0),
                no=int(row["no"] or 0),
            )
        )
    return rows


def _articles(session: Session, ids: set[int]) -> dict[int, tuple[str, str | None]]:
    found = session.execute(
        select(GuidanceArticle.id, GuidanceArticle.topic, GuidanceArticle.country).where(
            GuidanceArticle.id.in_(ids)
        )
    )
    return {int(row.id): (row.topic, row.country) for row in found}


def _revisions(session: Session, ids: set[int]) -> dict[int, tuple[str, int]]:
    found = session.execute(
        select(GuidanceRevision.id, GuidanceRevision.title, GuidanceRevision.number).where(
            GuidanceRevision.id.in_(ids)
        )
    )
    return {int(row.id): (row.title, int(row.number)) for row in found}


def totals(*, session: Session, period: Period = Period()) -> tuple[int, int]:
    """All yes and all no answers in the period (the page's headline)."""
    feedback = GuidanceFeedback
    query = select(
        func.coalesce(func.sum(case((feedback.helpful.is_(True), 1), else_=0)), 0).cast(Integer),
        func.coalesce(func.sum(case((feedback.helpful.is_(False), 1), else_=0)), 0).cast(Integer),
    )
    begin, stop = period.bounds()
    if begin is not None:
        query = query.where(feedback.created_at >= begin)
    if stop is not None:
        query = query.where(feedback.created_at < stop)
    yes, no = session.execute(query).one()
    return int(yes), int(no)
