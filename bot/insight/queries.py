"""The dashboard's figures, each one SQL aggregation in the database.

No query loads conversations, messages or handoffs into Python: each groups
and counts in SQL and returns at most a few thousand aggregate rows, which
Python only relabels (country to post, UTC buckets to local hours) and
passes through small-cell suppression (:mod:`bot.insight.suppression`).

Definitions (what a reader of the dashboard is told, too):

* **Conversation in range**: started (``created_at``) on a day from the
  filter's first to its last day inclusive, days in UTC. **Messages** are
  all the messages of the conversations in range (``message_count``, kept
  by triggers on the message table, so no figure joins the messages).
* **Urgent**: the conversation's priority is above zero (an urgent topic or
  the urgent safety net put it first in the queue).
* **Post**: a conversation belongs to the first-ranked post (lowest rank,
  then oldest) of the conversation's country, the post that answers
  "contact the embassy". A conversation with no country, or a country with
  no post, belongs to "No post (country unknown or no post)". As the post
  follows from the country, figures by post are computed by country in SQL
  and relabelled.
* **Hour of day**: the hour on the post's clock (its time zone, with
  daylight saving) when the conversation started. SQL counts by UTC hour:
  countries whose offset is whole hours and unchanged over the range by
  country and UTC hour; every other country (clocks changed, or half-hour
  offsets) in stretches between its clock changes, computed in Python from
  the time zone database, by UTC hour and quarter. Python turns each count
  into a local hour with the offset of its stretch, which is exact because
  the offset cannot change inside one. Conversations with no post are not
  placed on the clock.
* **Handoffs in range**: joined the officers' queue (``queued_at``) in the
  range, filtered by the topic, country and channel they were queued with
  (copied from the conversation then). A conversation handed off twice in
  the range, in the same group, counts once among the conversations handed
  off and twice among the handoffs. **Handoff rate**: conversations handed
  off in the range over conversations started in it; **resolved by the
  assistant** is the rest. (A conversation started just before the range
  and handed off in it counts in the numerator: at a range's edge the two
  can differ by a few; over days and weeks it is negligible, and it keeps
  the figures to one index each.)
* **Queue wait**: from joining the queue to an officer taking it
  (``assigned_at - queued_at``). **First reply**: from taking it to the
  officer's first message (``first_reply_at - assigned_at``). **Time to
  close**: from joining the queue to closing (``closed_at - queued_at``).
  Each is stored in whole seconds (rounded, halves away from zero) by
  database triggers whenever the times change (migration 0008), so an
  officer's transfer restarts the wait and first reply from the new
  take-over, as the timestamps do. Percentiles are nearest-rank (the value
  at rank ceil(p x n) in order), each read from an index on the time in
  order, so SQLite and PostgreSQL agree. Handoffs still waiting, or never
  taken, count in none of these times.
* **Shift**: the desk's 8-hour watch, in UTC, when the handoff joined the
  queue (00:00-08:00, 08:00-16:00, 16:00-24:00 UTC). Officers work weekly
  shifts in their own time zones (``bot/handoff/rota.py``) that overlap
  and change; a fixed UTC watch compares like with like across the year
  and across posts.
* **Helpful**: "Was this helpful?" answers given in range (by the time of
  the answer) to the guidance article shown, in conversations matching the
  filters. **Unanswered**: questions the assistant fell back on, asked in
  range. **Past review-by**: articles whose latest published revision has
  a review-by date before today (not filtered by date; it is the state now).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from functools import lru_cache
from typing import Any, Final
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Integer,
    and_,
    bindparam,
    case,
    exists,
    func,
    literal,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.orm import Session

from bot.db.models import (
    Conversation,
    GuidanceArticle,
    GuidanceFeedback,
    GuidanceRevision,
    Handoff,
    Message,
    Post,
    RevisionStatus,
    UnansweredQuestion,
)
from bot.insight import suppression
from bot.insight.sql import unindexed, utc_hour, utc_quarter

NO_POST: Final = "No post (country unknown or no post)"
NO_COUNTRY: Final = "No country recognised"
NO_TOPIC: Final = "No topic (greetings and small talk)"
WATCHES: Final = ("00:00 to 08:00 UTC", "08:00 to 16:00 UTC", "16:00 to 24:00 UTC")
WEEKLY_AFTER_DAYS: Final = 92  # longer ranges are shown by week

C = Conversation.__table__.c
H = Handoff.__table__.c
M = Message.__table__.c


@dataclass(frozen=True)
class Filters:
    """What the dashboard shows: a range of UTC days, and optional country, topic, channel."""

    start: date
    end: date
    country: str | None = None
    topic: str | None = None
    channel: str | None = None

    @property
    def since(self) -> datetime:
        return datetime.combine(self.start, clock(0), tzinfo=UTC)

    @property
    def until(self) -> datetime:
        """The first moment after the range."""
        return datetime.combine(self.end + timedelta(days=1), clock(0), tzinfo=UTC)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


def conversation_filter(filters: Filters) -> list[ColumnElement[bool]]:
    """The WHERE clause that selects the conversations in range, on the conversation table."""
    return _in_range(filters, C.created_at, C)


def _in_range(filters: Filters, when: Any, t: Any) -> list[ColumnElement[bool]]:
    """``when`` within the date range, and ``t``'s country, topic and channel as filtered."""
    where: list[ColumnElement[bool]] = [when >= filters.since, when < filters.until]
    if filters.country:
        where.append(t.country == filters.country)
    if filters.topic:
        where.append(t.topic == filters.topic)
    if filters.channel:
        where.append(t.channel == filters.channel)
    return where


# -- figures: what a page shows -----------------------------------------------------------


class _Hidden:
    """A suppressed value: renders as "fewer than 5", exports as the same words."""

    def __repr__(self) -> str:
        return "HIDDEN"

    def __str__(self) -> str:
        return suppression.SUPPRESSED


HIDDEN: Final = _Hidden()


@dataclass(frozen=True)
class Column:
    """One column of a figure; ``kind`` says how to show its values."""

    key: str
    label: str
    kind: str = "count"  # label | count | share | seconds | date | text


@dataclass
class Figure:
    """One chart's data: the table is the source of truth, the chart draws from it."""

    key: str
    title: str
    columns: tuple[Column, ...]
    rows: list[list[Any]] = field(default_factory=list)
    total: list[Any] | None = None
    chart: str | None = "bar"  # bar (across), column (up), line, or None
    series: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)

    def column(self, key: str) -> int:
        return next(i for i, column in enumerate(self.columns) if column.key == key)


def _protected(counts: Sequence[int]) -> list[bool]:
    return suppression.protect(counts)


def _count_column(rows: list[list[Any]], index: int, guard: Sequence[bool] | None = None) -> None:
    """Suppresses one count column in place (primary and secondary rules)."""
    counts = [int(row[index]) for row in rows]
    mask = suppression.protect(
        counts, [suppression.hidden(c) or bool(guard and guard[i]) for i, c in enumerate(counts)]
    )
    for row, off in zip(rows, mask, strict=True):
        if off:
            row[index] = HIDDEN


def _share(numerator: int, denominator: int) -> float | _Hidden | None:
    if denominator == 0:
        return None
    if suppression.share_hidden(numerator, denominator):
        return HIDDEN
    return numerator / denominator


# -- lookups ------------------------------------------------------------------------------


def post_names(session: Session) -> dict[str, tuple[str, str]]:
    """Country -> (its first-ranked post's name, time zone)."""
    rows = session.execute(
        select(Post.country, Post.name, Post.timezone).order_by(Post.country, Post.rank, Post.id)
    ).all()
    posts: dict[str, tuple[str, str]] = {}
    for country, name, zone in rows:
        posts.setdefault(country, (name, zone))
    return posts


def topic_label(slug: str | None) -> str:
    if slug is None:
        return NO_TOPIC
    return slug.replace("-", " ").capitalize()


def country_label(code: str | None) -> str:
    if code is None:
        return NO_COUNTRY
    from bot.geo.gazetteer import country_name

    try:
        return f"{country_name(code)} ({code})"
    except (KeyError, ValueError, LookupError):
        return code


# -- demand -------------------------------------------------------------------------------


def _urgent() -> ColumnElement[int]:
    return func.sum(case((C.priority > 0, 1), else_=0))


def _messages() -> ColumnElement[int]:
    return func.coalesce(func.sum(C.message_count), 0)


def _buckets(filters: Filters) -> list[tuple[str, datetime, datetime]]:
    """(label, first moment, first moment after) of each day, or each week for long ranges."""
    weekly = filters.days > WEEKLY_AFTER_DAYS
    buckets = []
    current = filters.start
    while current <= filters.end:
        if weekly:
            following = min(
                current + timedelta(days=7 - current.weekday()), filters.end + timedelta(days=1)
            )
            label = f"Week from {current.isoformat()}"
        else:
            following = current + timedelta(days=1)
            label = current.isoformat()
        buckets.append(
            (
                label,
                datetime.combine(current, clock(0), tzinfo=UTC),
                datetime.combine(following, clock(0), tzinfo=UTC),
            )
        )
        current = following
    return buckets


def over_time(session: Session, filters: Filters) -> Figure:
    """Conversations, urgent ones and their messages a day (a week for long ranges).

    One range count per bucket, joined with UNION ALL: each reads its slice
    of an index in order, so no database has to sort the range to group it.
    """
    buckets = _buckets(filters)
    others = conversation_filter(filters)[2:]
    parts = [
        select(literal(index).label("bucket"), func.count(), _urgent(), _messages()).where(
            C.created_at >= since, C.created_at < until, *others
        )
        for index, (_label, since, until) in enumerate(buckets)
    ]
    counts = {int(row[0]): row[1:] for row in session.execute(union_all(*parts)).all()}
    weekly = filters.days > WEEKLY_AFTER_DAYS
    figure = Figure(
        key="over-time",
        title="Conversations over time" + (" (by week)" if weekly else " (by day)"),
        columns=(
            Column("period", "Week" if weekly else "Day", "label"),
            Column("conversations", "Conversations"),
            Column("urgent", "Urgent"),
            Column("messages", "Messages"),
        ),
        rows=[
            [label, int(counts[i][0]), int(counts[i][1] or 0), int(counts[i][2] or 0)]
            for i, (label, _s, _u) in enumerate(buckets)
        ],
        chart="line",
        series=("conversations", "urgent"),
    )
    _finish_counts(figure, messages=3)
    return figure


def _finish_counts(
    figure: Figure, *, messages: int | None = None, share: int | None = None
) -> None:
    """Totals, then suppression of the conversation counts (and what rests on them)."""
    count_columns = [
        i for i, column in enumerate(figure.columns) if column.kind == "count" and i != messages
    ]
    figure.total = ["Total", *([None] * (len(figure.columns) - 1))]
    for i in [*count_columns, *([messages] if messages is not None else [])]:
        figure.total[i] = sum(int(row[i]) for row in figure.rows)
    conversations = count_columns[0]
    total = figure.total[conversations]
    for i in count_columns:
        _count_column(figure.rows, i)
    for row in figure.rows:
        if messages is not None and row[conversations] is HIDDEN:
            row[messages] = HIDDEN
        if share is not None:
            row[share] = (
                HIDDEN
                if row[conversations] is HIDDEN
                else (row[conversations] / total if total else None)
            )
    if share is not None:
        figure.total[share] = 1.0 if total else None
    _hide_total(figure)
    if messages is not None and figure.total[conversations] is HIDDEN:
        figure.total[messages] = HIDDEN


def _hide_total(figure: Figure) -> None:
    if figure.total is None:
        return
    for index, value in enumerate(figure.total):
        if isinstance(value, int) and not isinstance(value, bool) and suppression.hidden(value):
            figure.total[index] = HIDDEN


def _breakdown(
    session: Session,
    filters: Filters,
    key: ColumnElement[Any],
) -> list[tuple[Any, int, int, int]]:
    rows = session.execute(
        select(key, func.count(), _urgent(), _messages())
        .where(*conversation_filter(filters))
        .group_by(key)
    ).all()
    return [(k, int(n), int(u or 0), int(m or 0)) for k, n, u, m in rows]


def _demand_figure(
    key: str, title: str, label: str, groups: Iterable[tuple[str, int, int, int]]
) -> Figure:
    ordered = sorted(groups, key=lambda g: (-g[1], g[0]))
    figure = Figure(
        key=key,
        title=title,
        columns=(
            Column("group", label, "label"),
            Column("conversations", "Conversations"),
            Column("urgent", "Urgent"),
            Column("messages", "Messages"),
            Column("share", "Share of conversations", "share"),
        ),
        rows=[[name, n, u, m, None] for name, n, u, m in ordered],
        series=("conversations", "urgent"),
    )
    _finish_counts(figure, messages=3, share=4)
    return figure


def by_topic(session: Session, filters: Filters) -> Figure:
    groups = [(topic_label(k), n, u, m) for k, n, u, m in _breakdown(session, filters, C.topic)]
    return _demand_figure("by-topic", "Conversations by topic", "Topic", groups)


def by_country(session: Session, filters: Filters) -> Figure:
    groups = [(country_label(k), n, u, m) for k, n, u, m in _breakdown(session, filters, C.country)]
    return _demand_figure("by-country", "Conversations by country", "Country", groups)


def by_channel(session: Session, filters: Filters) -> Figure:
    groups = [(channel_label(k), n, u, m) for k, n, u, m in _breakdown(session, filters, C.channel)]
    return _demand_figure("by-channel", "Conversations by channel", "Channel", groups)


CHANNEL_LABELS: Final = {
    "webchat": "Web chat",
    "whatsapp": "WhatsApp",
    "telegram": "Telegram",
    "sms": "SMS",
}


def channel_label(channel: str | None) -> str:
    return CHANNEL_LABELS.get(channel or "", channel or "Unknown")


def _by_post_counts(
    session: Session, filters: Filters, posts: dict[str, tuple[str, str]]
) -> dict[str, list[int]]:
    """Post name -> [conversations, urgent, messages], from counts by country."""
    merged: dict[str, list[int]] = {}
    for country, n, u, m in _breakdown(session, filters, C.country):
        name = posts[country][0] if country in posts else NO_POST
        bucket = merged.setdefault(name, [0, 0, 0])
        bucket[0] += n
        bucket[1] += u
        bucket[2] += m
    return merged


def by_post(session: Session, filters: Filters) -> Figure:
    merged = _by_post_counts(session, filters, post_names(session))
    groups = [(name, n, u, m) for name, (n, u, m) in merged.items()]
    return _demand_figure("by-post", "Conversations by post", "Post", groups)


# -- local hour of day -------------------------------------------------------------------


@lru_cache(maxsize=1024)
def _transitions(zone_name: str, since: datetime, until: datetime) -> tuple[datetime, ...]:
    """Instants in [since, until) at which the zone's UTC offset changes (to the second).

    Offsets are compared a week apart, then the change is found by halving:
    no time zone changes its clocks twice within a week.
    """
    zone = _zone(zone_name)
    found = []
    day = since
    offset = since.astimezone(zone).utcoffset()
    while day < until:
        following = min(day + timedelta(days=7), until)
        next_offset = following.astimezone(zone).utcoffset()
        if next_offset != offset:
            low, high = day, following
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                if middle.astimezone(zone).utcoffset() == offset:
                    low = middle
                else:
                    high = middle
            found.append(high.replace(microsecond=0))
            offset = next_offset
        day = following
    return tuple(found)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError):
        return ZoneInfo("UTC")


@dataclass(frozen=True)
class _Slice:
    """One country over one stretch of the range in which its UTC offset is constant."""

    country: str
    since: datetime
    until: datetime
    fractional: bool


def _slices(zones: dict[str, str], filters: Filters) -> tuple[list[str], list[_Slice]]:
    """Countries whose clocks never change in range on whole hours, and slices of the rest."""
    steady: list[str] = []
    slices: list[_Slice] = []
    for country, zone in sorted(zones.items()):
        if filters.country and country != filters.country:
            continue
        instants = _transitions(zone, filters.since, filters.until)
        bounds = [filters.since, *instants, filters.until]
        offsets = {_zone(zone).utcoffset(moment) for moment in bounds[:-1]}
        fractional = any(o is not None and o.total_seconds() % 3600 for o in offsets)
        if not instants and not fractional:
            steady.append(country)
            continue
        slices += [
            _Slice(country, low, high, fractional)
            for low, high in zip(bounds, bounds[1:], strict=False)
            if low < high
        ]
    return steady, slices


def by_local_hour(session: Session, filters: Filters) -> Figure:
    """Conversations by hour of day on the post's clock.

    One SELECT for the countries whose offset is whole hours and constant
    over the range, grouped by country and UTC hour (an expression index
    gives that order, so SQLite need not sort); one more per country and
    stretch of constant offset for the rest (clock changes, half hours),
    grouped by UTC hour and quarter. UNION ALL sends them in one statement.
    """
    posts = post_names(session)
    zones = {country: zone for country, (_name, zone) in posts.items()}
    steady, slices = _slices(zones, filters)
    others = conversation_filter(filters)[2:]
    hour = utc_hour(C.created_at)
    parts = []
    if steady:
        parts.append(
            select(
                literal(-1).label("slice"),
                C.country,
                hour,
                literal(0),
                func.count(),
                _urgent(),
                _messages(),
            )
            .where(*conversation_filter(filters), C.country.in_(steady))
            .group_by(C.country, hour)
        )
    for index, piece in enumerate(slices):
        quarter = utc_quarter(C.created_at) if piece.fractional else literal(0)
        parts.append(
            select(literal(index), C.country, hour, quarter, func.count(), _urgent(), _messages())
            .where(
                C.country == piece.country,
                C.created_at >= piece.since,
                C.created_at < piece.until,
                *others,
            )
            .group_by(C.country, hour, quarter)
        )
    rows = session.execute(union_all(*parts)).all() if parts else []
    counts = [[0, 0, 0] for _ in range(24)]
    for piece_index, country, utc, quarter_index, n, u, m in rows:
        zone = _zone(zones[country])
        moment = filters.since if piece_index < 0 else slices[int(piece_index)].since
        offset = zone.utcoffset(moment.astimezone(zone)) or timedelta()
        minutes = int(utc) * 60 + int(quarter_index) * 15 + int(offset.total_seconds() // 60)
        local = (minutes // 60) % 24
        counts[local][0] += int(n)
        counts[local][1] += int(u or 0)
        counts[local][2] += int(m or 0)
    figure = Figure(
        key="by-hour",
        title="Conversations by hour of day (post's local time)",
        columns=(
            Column("hour", "Hour (local)", "label"),
            Column("conversations", "Conversations"),
            Column("urgent", "Urgent"),
            Column("messages", "Messages"),
        ),
        rows=[[f"{h:02d}:00", n, u, m] for h, (n, u, m) in enumerate(counts)],
        chart="column",
        series=("conversations", "urgent"),
    )
    _finish_counts(figure, messages=3)
    figure.notes.append(
        "Each conversation is placed on its post's clock, daylight saving included; "
        "conversations with no post are not placed, so the total can be below the others."
    )
    return figure


# -- service ------------------------------------------------------------------------------

# The stored whole-second times (kept by triggers, migration 0008), by figure name.
DURATIONS: Final = {
    "wait": H.wait_seconds,
    "reply": H.reply_seconds,
    "close": H.close_seconds,
}


@dataclass(frozen=True)
class Spread:
    """Nearest-rank median and 95th percentile of one duration in one group."""

    n: int
    p50: int | None
    p95: int | None


def nearest_rank(n: int, percent: int) -> int:
    """The 1-based rank of the nearest-rank percentile of ``n`` values: ceil(percent/100 x n)."""
    return (n * percent + 99) // 100


def handoff_filter(filters: Filters, t: Any = H) -> list[ColumnElement[bool]]:
    """Handoffs queued in range, by the topic, country and channel they were queued with.

    Handoffs carry their conversation's topic, country and channel, so no
    figure of handoffs joins the conversations. ``t`` is the handoff table's
    columns, or an alias's.
    """
    return _in_range(filters, t.queued_at, t)


def _as_is(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class Grouping:
    """How a service figure splits the handoffs.

    The figure counts by ``key`` in one pass; ``merge`` then turns each key
    into the group shown (several keys can make one group), and ``same`` says
    when two handoffs (an alias's columns, then the table's) are in the same
    group. Each percentile is read for one group at a time from an index in
    order, so ``members`` gives the rows of one key as conditions an index
    serves. Keys and conditions are built on the columns given (the handoff
    table's, or an alias's).
    """

    key: Callable[[Any], ColumnElement[Any]] | None
    members: Callable[[Any, Any], ColumnElement[bool]]
    merge: Callable[[Any], Any] = _as_is
    same: Callable[[Any, Any], ColumnElement[bool]] | None = None


WHOLE: Final = Grouping(key=None, members=lambda t, value: true())


def _shift(t: Any) -> ColumnElement[int]:
    shift: ColumnElement[int] = utc_hour(t.queued_at) // 8
    return shift


BY_SHIFT: Final = Grouping(key=_shift, members=lambda t, value: _shift(t) == value)


def by_post_grouping(posts: dict[str, tuple[str, str]]) -> Grouping:
    """By the handoff's country when it has a post; the others (and none) in one group, None.

    Counted by country (no expression to sort by) and merged in Python; the
    "no post" group's percentiles read its few countries' index entries.
    """
    countries = sorted(posts)

    def post_key(t: Any) -> ColumnElement[Any]:
        return case((t.country.in_(countries), t.country), else_=literal(None))

    return Grouping(
        key=lambda t: t.country,
        members=lambda t, value: t.country.is_(None) if value is None else t.country == value,
        merge=lambda value: value if value in posts else None,
        same=lambda e, t: post_key(e).is_not_distinct_from(post_key(t)),
    )


@dataclass(frozen=True)
class ServiceGroup:
    """One group's handoffs, conversations handed off (when asked) and times."""

    handoffs: int
    conversations: int
    spreads: dict[str, Spread]


def service_groups(
    session: Session, filters: Filters, grouping: Grouping, *, conversations: bool = False
) -> dict[Any, ServiceGroup]:
    """Handoffs, conversations handed off and p50/p95 of each time, per group.

    One grouped count over the range (from a covering index), then each
    percentile that the figure can show as one ``ORDER BY time LIMIT 1
    OFFSET rank - 1``, which an index on the time (or on the country and the
    time) hands out in order: no database sorts the handoffs. Percentiles
    that suppression would hide (too few values) are never looked up.
    """
    key = grouping.key(H) if grouping.key is not None else literal(0)
    counted: list[ColumnElement[Any]] = [key, func.count()]
    counted.append(_repeats(filters, grouping) if conversations else literal(0))
    counted += [func.count(column) for column in DURATIONS.values()]
    rows = session.execute(select(*counted).where(*handoff_filter(filters)).group_by(key)).all()
    merged: dict[Any, list[Any]] = {}
    for value, handoffs, repeats, *counts in rows:
        group = grouping.merge(value)
        keys, totals = merged.setdefault(group, [[], [0] * (2 + len(DURATIONS))])
        keys.append(value)
        for index, number in enumerate([handoffs, repeats, *counts]):
            totals[index] += int(number or 0)
    lookups = _Lookups(session, filters, grouping)
    return {
        group: ServiceGroup(
            handoffs=totals[0],
            conversations=totals[0] - totals[1] if conversations else 0,
            spreads=lookups.spreads(keys, dict(zip(DURATIONS, totals[2:], strict=True))),
        )
        for group, (keys, totals) in merged.items()
    }


def _repeats(filters: Filters, grouping: Grouping) -> ColumnElement[int]:
    """Handoffs in the group whose conversation has an earlier handoff in the same group.

    The handoffs minus these are the conversations handed off, without a
    count(DISTINCT) and its sort: only handoffs marked ``is_repeat`` (a
    conversation handed off again, few) look for their earlier ones, by the
    conversation's index.
    """
    earlier = Handoff.__table__.alias("earlier")
    e = earlier.c
    same: list[ColumnElement[bool]] = [
        e.conversation_id == H.conversation_id,
        e.id < H.id,
        *handoff_filter(filters, e),
    ]
    if grouping.same is not None:
        same.append(grouping.same(e, H))
    elif grouping.key is not None:
        same.append(grouping.key(e).is_not_distinct_from(grouping.key(H)))
    found = exists().where(*same)
    return func.coalesce(func.sum(case((H.is_repeat, case((found, 1), else_=0)), else_=0)), 0)


PERCENTILES: Final = (("p50", 50, suppression.THRESHOLD), ("p95", 95, suppression.P95_MINIMUM))


class _Lookups:
    """Reads a group's percentiles of every time in one statement, built once per kind of group.

    Each percentile is its own ``ORDER BY time LIMIT 1 OFFSET rank - 1``; the
    six go as one UNION ALL with bound parameters for the group and ranks, so
    a figure by post runs one prepared statement per post and the time goes
    on reading indexes, not on building SQL. A percentile suppression would
    hide anyway gets ``LIMIT 0``, which reads nothing.
    """

    def __init__(self, session: Session, filters: Filters, grouping: Grouping) -> None:
        # Core, not the ORM: nothing here is an entity, and it runs hundreds of times.
        self.connection = session.connection()
        self.filters = filters
        self.grouping = grouping
        self.statements: dict[bool, Any] = {}

    def spreads(self, keys: list[Any], counts: dict[str, int]) -> dict[str, Spread]:
        if len(keys) == 1:
            statement = self.statements.get(keys[0] is None)
            if statement is None:
                member = self.grouping.members(H, None if keys[0] is None else bindparam("key"))
                statement = self.statements[keys[0] is None] = self._statement(member)
        else:  # a merged group ("no post"): one of its kind in a figure
            statement = self._statement(or_(*(self.grouping.members(H, key) for key in keys)))
        parameters: dict[str, Any] = {"key": keys[0]}
        for name, n in counts.items():
            for which, percent, minimum in PERCENTILES:
                parameters[f"skip_{name}_{which}"] = max(nearest_rank(n, percent) - 1, 0)
                parameters[f"take_{name}_{which}"] = 1 if n >= minimum else 0
        found = {which: value for which, value in self.connection.execute(statement, parameters)}
        return {
            name: Spread(
                n,
                *(_int(found.get(f"{name}_{which}")) for which, _percent, _minimum in PERCENTILES),
            )
            for name, n in counts.items()
        }

    def _statement(self, members: ColumnElement[bool]) -> Any:
        # The date range is left unindexed on SQLite: it would otherwise walk the
        # range's index and sort all of it, where walking the time's index (or
        # the country's then the time's) filters as it goes and stops at the rank.
        where = [
            unindexed(H.queued_at) >= self.filters.since,
            unindexed(H.queued_at) < self.filters.until,
            *handoff_filter(self.filters)[2:],
            members,
        ]
        parts = []
        for name, column in DURATIONS.items():
            for which, _percent, _minimum in PERCENTILES:
                picked = (
                    select(literal(f"{name}_{which}").label("which"), column.label("value"))
                    .where(*where, column.is_not(None))
                    .order_by(column)
                    .limit(bindparam(f"take_{name}_{which}", type_=Integer))
                    .offset(bindparam(f"skip_{name}_{which}", type_=Integer))
                    .subquery()
                )
                parts.append(select(picked.c.which, picked.c.value))
        return union_all(*parts)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def handoff_counts(session: Session, filters: Filters, group: ColumnElement[Any]) -> dict[Any, int]:
    """Handoffs in range per group."""
    rows = session.execute(
        select(group, func.count()).where(*handoff_filter(filters)).group_by(group)
    ).all()
    return {k: int(n) for k, n in rows}


def _p(spread: Spread | None, which: str) -> int | _Hidden | None:
    if spread is None or spread.n == 0:
        return None
    if which == "p50":
        return HIDDEN if spread.n < suppression.THRESHOLD else spread.p50
    return HIDDEN if spread.n < suppression.P95_MINIMUM else spread.p95


TIME_COLUMNS: Final = (
    Column("wait_p50", "Queue wait, median", "seconds"),
    Column("wait_p95", "Queue wait, 95th percentile", "seconds"),
    Column("reply_p50", "First reply, median", "seconds"),
    Column("reply_p95", "First reply, 95th percentile", "seconds"),
    Column("close_p50", "Time to close, median", "seconds"),
    Column("close_p95", "Time to close, 95th percentile", "seconds"),
)


def _times(found: dict[str, Spread] | None) -> list[Any]:
    values: list[Any] = []
    for name in DURATIONS:
        spread = (found or {}).get(name)
        values += [_p(spread, "p50"), _p(spread, "p95")]
    return values


def service_summary(session: Session, filters: Filters) -> Figure:
    """The whole range in one row: the assistant's share and the officers' times."""
    conversations = int(
        session.execute(select(func.count()).where(*conversation_filter(filters))).scalar_one()
    )
    found = service_groups(session, filters, WHOLE, conversations=True).get(0)
    handoffs = found.handoffs if found else 0
    handed = found.conversations if found else 0
    figure = Figure(
        key="service",
        title="Service: the assistant and the officers",
        columns=(
            Column("scope", "Scope", "label"),
            Column("conversations", "Conversations"),
            Column("handed_off", "Conversations handed to an officer"),
            Column("resolved_share", "Resolved by the assistant", "share"),
            Column("handoff_rate", "Handoff rate", "share"),
            *TIME_COLUMNS,
        ),
        rows=[
            [
                "All in range",
                conversations,
                handed,
                _share(max(conversations - handed, 0), conversations),
                _share(min(handed, conversations), conversations),
                *_times(found.spreads if found else None),
            ]
        ],
        chart=None,
    )
    for index in (1, 2):
        if suppression.hidden(figure.rows[0][index]):
            figure.rows[0][index] = HIDDEN
    in_all = suppression.SUPPRESSED if suppression.hidden(handoffs) else f"{handoffs:,}"
    figure.notes.append(f"{in_all} handoffs in all (a conversation can be handed off twice).")
    return figure


def service_by_post(session: Session, filters: Filters) -> Figure:
    """Conversations, handoffs and officers' times by post."""
    posts = post_names(session)
    conversations = {
        name: counts[0] for name, counts in _by_post_counts(session, filters, posts).items()
    }
    groups = service_groups(session, filters, by_post_grouping(posts), conversations=True)
    by_name = {(posts[key][0] if key in posts else NO_POST): group for key, group in groups.items()}
    rows = []
    for name in sorted(set(conversations) | set(by_name)):
        total = conversations.get(name, 0)
        group = by_name.get(name)
        handed_off = group.conversations if group else 0
        rows.append(
            [
                name,
                total,
                handed_off,
                _share(min(handed_off, total), total),
                *_times(group.spreads if group else None),
            ]
        )
    rows.sort(key=lambda row: (-row[1], row[0]))
    figure = Figure(
        key="service-by-post",
        title="Service by post",
        columns=(
            Column("post", "Post", "label"),
            Column("conversations", "Conversations"),
            Column("handed_off", "Handed to an officer"),
            Column("handoff_rate", "Handoff rate", "share"),
            *TIME_COLUMNS,
        ),
        rows=rows,
        series=("wait_p50", "wait_p95"),
    )
    conversation_mask = suppression.protect([row[1] for row in rows])
    handed_mask = suppression.protect([row[2] for row in rows])
    for row, c_off, h_off in zip(rows, conversation_mask, handed_mask, strict=True):
        if c_off:
            row[1] = HIDDEN
        if h_off:
            row[2] = HIDDEN
        if c_off or h_off:
            row[3] = HIDDEN
    return figure


def service_by_shift(session: Session, filters: Filters) -> Figure:
    """Handoffs and officers' times by the UTC watch in which they joined the queue."""
    groups = service_groups(session, filters, BY_SHIFT)
    rows = []
    for index, watch in enumerate(WATCHES):
        group = groups.get(index)
        rows.append(
            [watch, group.handoffs if group else 0, *_times(group.spreads if group else None)]
        )
    figure = Figure(
        key="service-by-shift",
        title="Service by shift (UTC watch)",
        columns=(Column("shift", "Shift", "label"), Column("handoffs", "Handoffs"), *TIME_COLUMNS),
        rows=rows,
        series=("wait_p50", "wait_p95"),
    )
    _count_column(figure.rows, 1)
    figure.notes.append("A handoff counts in the watch in which it joined the queue.")
    return figure


def _simple_counts(
    key: str, title: str, label: str, counts: Iterable[tuple[str, int]], unit: str
) -> Figure:
    ordered = sorted(counts, key=lambda g: (-g[1], g[0]))
    figure = Figure(
        key=key,
        title=title,
        columns=(
            Column("group", label, "label"),
            Column("count", unit),
            Column("share", "Share", "share"),
        ),
        rows=[[name, n, None] for name, n in ordered],
        series=("count",),
    )
    _finish_counts(figure, share=2)
    return figure


REASON_LABELS: Final = {
    "urgent": "Urgent topic",
    "bot-handoff": "Asked for a person, or the assistant passed it on",
    "assistant-unavailable": "Assistant unavailable",
    "identity-check-failed": "Case identity check failed",
}


def reason_label(reason: str | None) -> str:
    return REASON_LABELS.get(reason or "", reason or "Unknown")


def handoff_reasons(session: Session, filters: Filters) -> Figure:
    counts = handoff_counts(session, filters, H.reason)
    return _simple_counts(
        "handoff-reasons",
        "Why conversations went to an officer",
        "Reason",
        [(reason_label(k), n) for k, n in counts.items()],
        "Handoffs",
    )


def outcomes(session: Session, filters: Filters) -> Figure:
    from bot.handoff.actions import OUTCOME_RETURNED, OUTCOMES

    labels = {**OUTCOMES, OUTCOME_RETURNED: "Returned to the assistant"}
    group = case(
        (H.closed_at.is_(None), literal("(open)")), else_=func.coalesce(H.outcome, "(none)")
    )
    counts = handoff_counts(session, filters, group)
    return _simple_counts(
        "outcomes",
        "Outcomes of handoffs",
        "Outcome",
        [("Still open" if k == "(open)" else labels.get(k, k), n) for k, n in counts.items()],
        "Handoffs",
    )


# -- content ------------------------------------------------------------------------------

F = GuidanceFeedback.__table__.c
A = GuidanceArticle.__table__.c
U = UnansweredQuestion.__table__.c
R = GuidanceRevision.__table__.c


def _in_conversations(column: Any, filters: Filters, **wanted: str | None) -> ColumnElement[bool]:
    """A semi-join: ``column`` is the id of a conversation with the wanted values."""
    where = [C.created_at < filters.until]
    where += [C[name] == value for name, value in wanted.items() if value]
    found: ColumnElement[bool] = column.in_(select(C.id).where(*where))
    return found


def _feedback_filter(filters: Filters) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [F.created_at >= filters.since, F.created_at < filters.until]
    if filters.channel:
        where.append(F.channel == filters.channel)
    if filters.topic:
        where.append(A.topic == filters.topic)
    if filters.country:
        where.append(_in_conversations(F.conversation_id, filters, country=filters.country))
    return where


def helpful(session: Session, filters: Filters) -> Figure:
    """Answers to "Was this helpful?" by article."""
    rows = session.execute(
        select(
            A.topic,
            A.country,
            func.sum(case((F.helpful.is_(True), 1), else_=0)),
            func.sum(case((F.helpful.is_(True), 0), else_=1)),
        )
        .select_from(
            GuidanceFeedback.__table__.join(GuidanceArticle.__table__, F.article_id == A.id)
        )
        .where(*_feedback_filter(filters))
        .group_by(A.topic, A.country)
    ).all()
    grid: list[tuple[str, int, int]] = [
        (topic_label(topic) + (f" ({country})" if country else ""), int(yes or 0), int(no or 0))
        for topic, country, yes, no in rows
    ]
    grid.sort(key=lambda r: (-(r[1] + r[2]), r[0]))
    figure = Figure(
        key="helpful",
        title='"Was this helpful?" by article',
        columns=(
            Column("article", "Article", "label"),
            Column("yes", "Yes"),
            Column("no", "No"),
            Column("answers", "Answers"),
            Column("helpful_share", "Helpful", "share"),
        ),
        series=("yes", "no"),
    )
    # Yes and no add up to each article's answers, and each column to its
    # total: both directions are protected, and the answers column with them.
    mask = suppression.protect_grid([[r[1], r[2]] for r in grid])
    answers = [r[1] + r[2] for r in grid]
    answers_mask = suppression.protect(answers, [suppression.hidden(n) for n in answers])
    for row, (yes_off, no_off), total, total_off in zip(
        grid, mask, answers, answers_mask, strict=True
    ):
        figure.rows.append(
            [
                row[0],
                HIDDEN if yes_off else row[1],
                HIDDEN if no_off else row[2],
                HIDDEN if total_off else total,
                HIDDEN if (yes_off or no_off or total_off) else _share(row[1], total),
            ]
        )
    yes_total = sum(r[1] for r in grid)
    no_total = sum(r[2] for r in grid)
    figure.total = [
        "Total",
        yes_total,
        no_total,
        yes_total + no_total,
        _share(yes_total, yes_total + no_total),
    ]
    _hide_total(figure)
    if figure.total[1] is HIDDEN or figure.total[2] is HIDDEN:
        figure.total[1] = figure.total[2] = figure.total[4] = HIDDEN
    return figure


def _unanswered_rows(
    session: Session, filters: Filters, key: ColumnElement[Any], *, by_topic: bool = False
) -> list[tuple[Any, int]]:
    where: list[ColumnElement[bool]] = [U.created_at >= filters.since, U.created_at < filters.until]
    if filters.channel:
        where.append(U.channel == filters.channel)
    if filters.country:
        where.append(U.country == filters.country)
    query = select(key, func.count())
    if by_topic:
        # The topic lives on the conversation: join it (the questions are few).
        query = query.select_from(
            UnansweredQuestion.__table__.join(Conversation.__table__, U.conversation_id == C.id)
        )
        if filters.topic:
            where.append(C.topic == filters.topic)
    elif filters.topic:
        where.append(_in_conversations(U.conversation_id, filters, topic=filters.topic))
    rows = session.execute(query.where(*where).group_by(key)).all()
    return [(k, int(n)) for k, n in rows]


UNANSWERED_LABELS: Final = {
    "out_of_scope": "Out of scope",
    "misunderstood": "Not understood",
}


def unanswered_by_reason(session: Session, filters: Filters) -> Figure:
    return _simple_counts(
        "unanswered-by-reason",
        "Unanswered questions by reason",
        "Reason",
        [
            (UNANSWERED_LABELS.get(str(k), str(k)), n)
            for k, n in _unanswered_rows(session, filters, U.reason)
        ],
        "Questions",
    )


def unanswered_by_topic(session: Session, filters: Filters) -> Figure:
    return _simple_counts(
        "unanswered-by-topic",
        "Unanswered questions by the conversation's topic",
        "Topic",
        [
            (topic_label(k), n)
            for k, n in _unanswered_rows(session, filters, C.topic, by_topic=True)
        ],
        "Questions",
    )


def past_review_by(session: Session, filters: Filters, today: date | None = None) -> Figure:
    """Articles whose latest published revision is past its review-by date."""
    today = today or datetime.now(UTC).date()
    latest = (
        select(R.article_id.label("article_id"), func.max(R.number).label("number"))
        .where(R.status == RevisionStatus.PUBLISHED.value)
        .group_by(R.article_id)
        .subquery("latest")
    )
    where: list[ColumnElement[bool]] = [R.review_by < today]
    if filters.topic:
        where.append(A.topic == filters.topic)
    if filters.country:
        where.append(A.country == filters.country)
    joined = GuidanceRevision.__table__.join(
        latest, and_(R.article_id == latest.c.article_id, R.number == latest.c.number)
    ).join(GuidanceArticle.__table__, A.id == R.article_id)
    rows = session.execute(
        select(A.topic, A.country, R.title, R.review_by)
        .select_from(joined)
        .where(*where)
        .order_by(R.review_by, A.topic, A.country)
    ).all()
    figure = Figure(
        key="past-review-by",
        title="Articles past their review-by date",
        columns=(
            Column("article", "Article", "label"),
            Column("title", "Title", "text"),
            Column("review_by", "Review by", "date"),
            Column("days_overdue", "Days overdue", "number"),
        ),
        rows=[
            [
                topic_label(topic) + (f" ({country})" if country else ""),
                title,
                review_by,
                (today - review_by).days,
            ]
            for topic, country, title, review_by in rows
        ],
        chart=None,
    )
    figure.notes.append("Articles describe no one: nothing here needs suppressing.")
    return figure


# -- the pages' sets of figures ------------------------------------------------------------

FigureQuery = Callable[[Session, Filters], Figure]

DEMAND: Final[dict[str, FigureQuery]] = {
    "over-time": over_time,
    "by-topic": by_topic,
    "by-country": by_country,
    "by-post": by_post,
    "by-channel": by_channel,
    "by-hour": by_local_hour,
}
SERVICE: Final[dict[str, FigureQuery]] = {
    "service": service_summary,
    "service-by-post": service_by_post,
    "service-by-shift": service_by_shift,
    "handoff-reasons": handoff_reasons,
    "outcomes": outcomes,
}
CONTENT: Final[dict[str, FigureQuery]] = {
    "helpful": helpful,
    "unanswered-by-reason": unanswered_by_reason,
    "unanswered-by-topic": unanswered_by_topic,
    "past-review-by": past_review_by,
}
ALL: Final[dict[str, FigureQuery]] = {**DEMAND, **SERVICE, **CONTENT}
