"""The supervisors' dashboard: demand, service and content across the network of posts.

Three pages share one filter form (a GET: the address can be bookmarked
and shared) and show each figure of :mod:`bot.insight.queries` as a chart
with its table. The table is the source of truth and is in the page
itself: without JavaScript, or for a screen reader, the tables are the
dashboard; the script only draws the charts from them (Chart.js, vendored,
no inline script, as the Content-Security-Policy requires). Every table
downloads as CSV with the same filters.

Only aggregates leave the database, and every one has passed small-cell
suppression (:mod:`bot.insight.suppression`): no page and no CSV shows a
message, a name, an external id, or a figure describing fewer than 5
conversations. Supervisors and admins only.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import Response
from sqlalchemy.orm import Session

from bot.admin.common import PREFIX, Who, render, staff, unit
from bot.catalogue import TOPICS
from bot.db.models import OfficerRole
from bot.insight import queries
from bot.insight.queries import HIDDEN, Figure, Filters
from bot.insight.suppression import SUPPRESSED
from bot.web.pages import content_security_policy

router = APIRouter(prefix=PREFIX, include_in_schema=False)

BASE: Final = f"{PREFIX}/dashboard"
DEFAULT_DAYS: Final = 28
MAX_RANGE_DAYS: Final = 731
ROLES: Final = (OfficerRole.SUPERVISOR, OfficerRole.ADMIN)
_COUNTRY = re.compile(r"^[A-Z]{2}$")
# A spreadsheet runs a cell that starts with one of these as a formula.
_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Page:
    """One page of the dashboard and the figures it shows."""

    key: str
    label: str
    path: str
    figures: Mapping[str, queries.FigureQuery]


PAGES: Final = (
    Page("demand", "Demand", BASE, queries.DEMAND),
    Page("service", "Service", f"{BASE}/service", queries.SERVICE),
    Page("content", "Content", f"{BASE}/content", queries.CONTENT),
)


@dataclass(frozen=True)
class FilterForm:
    """The filters as typed (to show them back) and as applied, with any errors."""

    raw: Mapping[str, str]
    filters: Filters
    errors: Mapping[str, str]

    def query(self) -> str:
        """The applied filters as a query string, for the CSV links."""
        values = {
            "from": self.filters.start.isoformat(),
            "to": self.filters.end.isoformat(),
            "country": self.filters.country or "",
            "topic": self.filters.topic or "",
            "channel": self.filters.channel or "",
        }
        return urlencode({key: value for key, value in values.items() if value})


def parse_filters(params: Mapping[str, str], today: date) -> FilterForm:
    """Reads the filters; anything wrong is reported and the defaults apply instead."""
    raw = {
        name: params.get(name, "").strip() for name in ("from", "to", "country", "topic", "channel")
    }
    errors: dict[str, str] = {}
    end = _date(raw["to"], today, "to", "end", errors)
    start = _date(raw["from"], end - timedelta(days=DEFAULT_DAYS - 1), "from", "start", errors)
    if not errors and start > end:
        errors["from"] = "The start date must be on or before the end date"
    elif not errors and (end - start).days >= MAX_RANGE_DAYS:
        errors["from"] = "Choose a period of at most 2 years"
    if errors:
        end, start = today, today - timedelta(days=DEFAULT_DAYS - 1)
    country = raw["country"].upper() or None
    if country is not None and (not _COUNTRY.match(country) or not _known_country(country)):
        errors["country"] = "Choose a country from the list"
        country = None
    topic = raw["topic"] or None
    if topic is not None and topic not in {t.slug for t in TOPICS}:
        errors["topic"] = "Choose a topic from the list"
        topic = None
    channel = raw["channel"] or None
    if channel is not None and channel not in queries.CHANNEL_LABELS:
        errors["channel"] = "Choose a channel from the list"
        channel = None
    return FilterForm(
        raw=raw,
        filters=Filters(start=start, end=end, country=country, topic=topic, channel=channel),
        errors=errors,
    )


def _date(raw: str, default: date, name: str, which: str, errors: dict[str, str]) -> date:
    if not raw:
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError:
        errors[name] = f"Enter the {which} date as a real date, like 2026-11-30"
        return default


def _known_country(code: str) -> bool:
    from bot.geo.gazetteer import country_name

    try:
        country_name(code)
    except (KeyError, LookupError, ValueError):
        return False
    return True


def _countries() -> list[tuple[str, str]]:
    """(code, name) of every country, by name, for the filter."""
    import pycountry

    return sorted(
        (
            (country.alpha_2, queries.country_label(country.alpha_2))
            for country in pycountry.countries
        ),
        key=lambda item: item[1],
    )


# -- showing values ------------------------------------------------------------------------


def show(value: Any, kind: str) -> str:
    """A value as the page shows it."""
    if value is HIDDEN:
        return SUPPRESSED
    if value is None:
        return "–"
    if kind == "share":
        return f"{value * 100:.1f}%"
    if kind == "seconds":
        return duration(int(value))
    if kind in {"count", "number"}:
        return f"{int(value):,}"
    if isinstance(value, date):
        return value.strftime("%-d %B %Y")
    return str(value)


def duration(seconds: int) -> str:
    """Seconds in words a supervisor reads at a glance: 45 s, 3 min 20 s, 2 h 05 min."""
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    if seconds < 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    return f"{seconds // 86400} d {seconds % 86400 // 3600} h"


def chart_value(value: Any, kind: str) -> str:
    """The number a chart draws for a cell ("" for a hidden or empty one: a gap)."""
    if value is HIDDEN or value is None or kind not in {"count", "share", "seconds", "number"}:
        return ""
    if kind == "share":
        return f"{value * 100:.1f}"
    if kind == "seconds":
        return f"{value / 60:.2f}"  # charts of times are in minutes
    return str(int(value))


def csv_cell(value: Any, kind: str) -> str:
    """A value as the CSV holds it: plain numbers, and nothing a spreadsheet would run."""
    if value is HIDDEN:
        text = SUPPRESSED
    elif value is None:
        text = ""
    elif kind == "share":
        text = f"{value:.4f}"
    elif kind in {"count", "seconds", "number"}:
        text = str(int(value))
    elif isinstance(value, date):
        text = value.isoformat()
    else:
        text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def figure_csv(figure: Figure) -> str:
    """The figure's table as CSV: a header, its rows and its total row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    headers = [
        column.label
        + (" (seconds)" if column.kind == "seconds" else "")
        + (" (fraction)" if column.kind == "share" else "")
        for column in figure.columns
    ]
    writer.writerow([csv_cell(header, "text") for header in headers])
    rows = [*figure.rows, *([figure.total] if figure.total is not None else [])]
    for row in rows:
        writer.writerow(
            [
                csv_cell(value, column.kind)
                for value, column in zip(row, figure.columns, strict=True)
            ]
        )
    return buffer.getvalue()


# -- pages --------------------------------------------------------------------------------


def _today() -> date:
    return datetime.now(UTC).date()


def _compute(page: Page, filters: Filters) -> Any:
    def work(session: Session) -> list[Figure]:
        return [query(session, filters) for query in page.figures.values()]

    return work


def _summary(page: Page, figures: list[Figure]) -> list[tuple[str, str]]:
    """The cards at the top of a page: its headline numbers, from its own figures."""
    by_key = {figure.key: figure for figure in figures}
    if page.key == "demand":
        total = by_key["over-time"].total or []
        return [
            ("Conversations", show(total[1], "count")),
            ("Urgent conversations", show(total[2], "count")),
            ("Messages", show(total[3], "count")),
        ]
    if page.key == "service":
        figure = by_key["service"]
        row = figure.rows[0]
        cell = {
            column.key: (value, column.kind)
            for value, column in zip(row, figure.columns, strict=True)
        }
        return [
            ("Resolved by the assistant", show(*cell["resolved_share"])),
            ("Handoff rate", show(*cell["handoff_rate"])),
            ("Queue wait, median", show(*cell["wait_p50"])),
            ("First reply, median", show(*cell["reply_p50"])),
        ]
    helpful = by_key["helpful"].total or [None] * 5
    unanswered = by_key["unanswered-by-reason"].total or [None] * 3
    return [
        ('Answers "helpful"', show(helpful[4], "share")),
        ("Unanswered questions", show(unanswered[1], "count")),
        ("Articles past review-by", show(len(by_key["past-review-by"].rows), "count")),
    ]


def _table(figure: Figure) -> dict[str, Any]:
    """What the template needs of a figure: shown texts and chart numbers per cell."""

    def cells(row: list[Any]) -> list[dict[str, Any]]:
        return [
            {
                "text": show(value, column.kind),
                "value": chart_value(value, column.kind),
                "kind": column.kind,
                "hidden": value is HIDDEN,
            }
            for value, column in zip(row, figure.columns, strict=True)
        ]

    return {
        "key": figure.key,
        "title": figure.title,
        "columns": figure.columns,
        "rows": [cells(row) for row in figure.rows],
        "total": cells(figure.total) if figure.total is not None else None,
        "chart": figure.chart if figure.rows else None,
        "series": ",".join(figure.series),
        "seconds": any(
            column.kind == "seconds" and column.key in figure.series for column in figure.columns
        ),
        "notes": figure.notes,
    }


async def _page(request: Request, page: Page) -> Response:
    who: Who = await staff(request, *ROLES)
    form = parse_filters(request.query_params, _today())
    figures = await unit(request, _compute(page, form.filters))
    root = str(request.scope.get("root_path", "")).rstrip("/")
    return render(
        request,
        "admin/dashboard/page.html",
        {
            "section": "dashboard",
            "page": page,
            "pages": [
                {
                    "label": p.label,
                    "href": f"{root}{p.path}?{form.query()}",
                    "current": p.key == page.key,
                }
                for p in PAGES
            ],
            "form": form,
            "errors": dict(form.errors),
            "filters": form.filters,
            "summary": _summary(page, figures),
            "figures": [_table(figure) for figure in figures],
            "csv_base": f"{root}{BASE}/csv",
            "query": form.query(),
            "countries": _countries(),
            "topics": [(topic.slug, queries.topic_label(topic.slug)) for topic in TOPICS],
            "channels": list(queries.CHANNEL_LABELS.items()),
            "action": f"{root}{page.path}",
        },
        who=who,
        status_code=status.HTTP_400_BAD_REQUEST if form.errors else status.HTTP_200_OK,
    )


@router.get("/dashboard")
async def demand_page(request: Request) -> Response:
    """Demand: conversations over time, by topic, country, post, channel and local hour."""
    return await _page(request, PAGES[0])


@router.get("/dashboard/service")
async def service_page(request: Request) -> Response:
    """Service: the assistant's share, handoffs, waits and outcomes by post and by shift."""
    return await _page(request, PAGES[1])


@router.get("/dashboard/content")
async def content_page(request: Request) -> Response:
    """Content: helpfulness by article, unanswered questions, articles past review-by."""
    return await _page(request, PAGES[2])


@router.get("/dashboard/csv/{key}")
async def figure_download(request: Request, key: str) -> Response:
    """One figure's table as a CSV file, with the same filters as the page."""
    who = await staff(request, *ROLES)
    query = queries.ALL.get(key)
    if query is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="There is no such figure.")
    form = parse_filters(request.query_params, _today())
    if form.errors:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail=" ".join(form.errors.values()))
    del who

    def work(session: Session) -> Figure:
        return query(session, form.filters)

    figure = await unit(request, work)
    filters = form.filters
    name = f"consular-{key}-{filters.start.isoformat()}-to-{filters.end.isoformat()}.csv"
    return Response(
        content=figure_csv(figure),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Content-Security-Policy": content_security_policy(request),
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        },
    )
