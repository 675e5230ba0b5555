"""Portable SQL for the dashboard: time buckets and planner hints on SQLite and PostgreSQL.

Both databases store ``DateTime(timezone=True)`` columns in UTC (SQLite as
``YYYY-MM-DD HH:MM:SS.ffffff`` text, PostgreSQL as ``timestamptz``), so each
construct below reads the UTC value: text slices on SQLite (cheap, and
served from an index), ``AT TIME ZONE 'UTC'`` on PostgreSQL. Every construct
returns the same type and value on both, which the tests check.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Integer, String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ColumnElement
from sqlalchemy.sql.functions import FunctionElement


class utc_day(FunctionElement[str]):  # noqa: N801 - reads like the SQL function it is
    """The UTC calendar day of a timestamp, as ``YYYY-MM-DD`` text."""

    type = String()
    inherit_cache = True


class utc_hour(FunctionElement[int]):  # noqa: N801
    """The UTC hour (0 to 23) of a timestamp."""

    type = Integer()
    inherit_cache = True


class utc_quarter(FunctionElement[int]):  # noqa: N801
    """Which quarter of its UTC hour (0 to 3) a timestamp falls in."""

    type = Integer()
    inherit_cache = True


class unindexed(FunctionElement[Any]):  # noqa: N801
    """A column's value, which SQLite may not look up by an index (a unary plus).

    SQLite keeps no statistics on ranges, so for a date range covering most
    rows it would rather walk the date's index and sort than another index
    already in the order wanted; an operand it may not use steers it there.
    PostgreSQL plans from statistics: it gets the column as it is.
    """

    inherit_cache = True

    def __init__(self, column: ColumnElement[Any]) -> None:
        super().__init__(column)
        self.type = column.type  # bind values convert as the column's own


def _arg(compiler: SQLCompiler, element: FunctionElement[Any], index: int, **kw: Any) -> str:
    clauses: list[ColumnElement[Any]] = list(element.clauses)
    return compiler.process(clauses[index], **kw)


@compiles(utc_day, "sqlite")
def _utc_day_sqlite(element: utc_day, compiler: SQLCompiler, **kw: Any) -> str:
    return f"substr({_arg(compiler, element, 0, **kw)}, 1, 10)"


@compiles(utc_day, "postgresql")
def _utc_day_pg(element: utc_day, compiler: SQLCompiler, **kw: Any) -> str:
    return f"to_char({_arg(compiler, element, 0, **kw)} AT TIME ZONE 'UTC', 'YYYY-MM-DD')"


@compiles(utc_hour, "sqlite")
def _utc_hour_sqlite(element: utc_hour, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(substr({_arg(compiler, element, 0, **kw)}, 12, 2) AS INTEGER)"


@compiles(utc_hour, "postgresql")
def _utc_hour_pg(element: utc_hour, compiler: SQLCompiler, **kw: Any) -> str:
    value = _arg(compiler, element, 0, **kw)
    return f"CAST(EXTRACT(HOUR FROM {value} AT TIME ZONE 'UTC') AS INTEGER)"


@compiles(utc_quarter, "sqlite")
def _utc_quarter_sqlite(element: utc_quarter, compiler: SQLCompiler, **kw: Any) -> str:
    return f"(CAST(substr({_arg(compiler, element, 0, **kw)}, 15, 2) AS INTEGER) / 15)"


@compiles(utc_quarter, "postgresql")
def _utc_quarter_pg(element: utc_quarter, compiler: SQLCompiler, **kw: Any) -> str:
    value = _arg(compiler, element, 0, **kw)
    return f"(CAST(EXTRACT(MINUTE FROM {value} AT TIME ZONE 'UTC') AS INTEGER) / 15)"


@compiles(unindexed, "sqlite")
def _unindexed_sqlite(element: unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return f"+{_arg(compiler, element, 0, **kw)}"


@compiles(unindexed, "postgresql")
def _unindexed_pg(element: unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return _arg(compiler, element, 0, **kw)
