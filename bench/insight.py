"""Dashboard benchmark (issue 8): every figure's query over a synthetic history.

Generates N synthetic conversations (default 1,000,000 across 250 posts
over a year, ``bot insight generate``) into a SQLite database in the
temporary folder, migrated like the real one and seeded with the sample
guidance (so "Was this helpful?" answers have articles). A database made
earlier with the same parameters is reused (migrated to the newest schema
first): generation takes minutes.

Then, for two views, the whole year and the dashboard's default (the last
28 days), each figure is computed in a fresh process-level engine (cold: an
empty SQLite page cache) and then three times more (warm: the median).
Before that the database file is read once, so the operating system's file
cache holds it as it would on a dashboard server in use; the time that
read takes is printed (on this machine, after hours without touching the
file, the first whole-year figures took 3.3-3.5 s straight from disk).
Prints a table against the target, < 1 s a figure on SQLite, and writes
results/bench-insight.json.

Usage: ``.venv/bin/python -m bench.insight [--conversations 1000000]
[--posts 250] [--days 365] [--seed 1] [--database PATH] [--fresh]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.db.migrate import upgrade_to_head
from bot.db.session import make_engine, make_session_factory, session_scope
from bot.insight import queries
from bot.insight.synthetic import Plan, generate
from bot.seed import seed_sample_guidance

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results" / "bench-insight.json"
TARGET_SECONDS = 1.0
DEFAULT_VIEW_DAYS = 28
WARM_RUNS = 3


def _database(args: argparse.Namespace) -> Path:
    if args.database:
        return Path(args.database)
    name = f"consular-insight-{args.conversations}-{args.posts}-{args.days}-{args.seed}.db"
    return Path(tempfile.gettempdir()) / name


def _parameters(args: argparse.Namespace) -> dict[str, int]:
    return {
        "conversations": args.conversations,
        "posts": args.posts,
        "days": args.days,
        "seed": args.seed,
    }


def prepare(args: argparse.Namespace) -> tuple[str, datetime, float | None]:
    """The database's URL, the end of its history, and generation seconds (None: reused)."""
    path = _database(args)
    sidecar = path.with_suffix(".json")
    wanted = _parameters(args)
    if not args.fresh and path.exists() and sidecar.exists():
        saved = json.loads(sidecar.read_text(encoding="utf-8"))
        if saved.get("parameters") == wanted:
            print(f"reusing {path} (same parameters)", file=sys.stderr)
            # Made by an older schema: later migrations add (and backfill) what
            # the queries now read, in seconds rather than generation's minutes.
            upgrade_to_head(f"sqlite:///{path}")
            return f"sqlite:///{path}", datetime.fromisoformat(saved["end"]), None
    for stale in (path, sidecar, Path(f"{path}-wal"), Path(f"{path}-shm")):
        stale.unlink(missing_ok=True)
    url = f"sqlite:///{path}"
    upgrade_to_head(url)
    engine = make_engine(url)
    with session_scope(make_session_factory(engine)) as session:
        seed_sample_guidance(session=session)
    end = datetime.combine(datetime.now(UTC).date(), datetime.min.time(), tzinfo=UTC)
    plan = Plan(
        conversations=args.conversations, posts=args.posts, days=args.days, seed=args.seed, end=end
    )
    print(f"generating {args.conversations:,} conversations into {path}", file=sys.stderr)
    report = generate(
        engine, plan, progress=lambda line: print(f"  {line}", file=sys.stderr, flush=True)
    )
    engine.dispose()
    sidecar.write_text(
        json.dumps({"parameters": wanted, "end": end.isoformat(), "report": vars(report)}),
        encoding="utf-8",
    )
    return url, end, report.seconds


def _views(end: datetime, days: int) -> dict[str, queries.Filters]:
    last = (end - timedelta(days=1)).date()
    return {
        f"whole history ({days} days)": queries.Filters(
            start=last - timedelta(days=days - 1), end=last
        ),
        f"default view ({DEFAULT_VIEW_DAYS} days)": queries.Filters(
            start=last - timedelta(days=DEFAULT_VIEW_DAYS - 1), end=last
        ),
    }


def measure(url: str, filters: queries.Filters) -> list[dict[str, Any]]:
    """Cold and warm seconds of every figure for one view."""
    rows = []
    for key, query in queries.ALL.items():
        engine = make_engine(url)  # a new engine: a new connection, an empty page cache
        factory = make_session_factory(engine)
        with session_scope(factory) as session:
            started = time.perf_counter()
            figure = query(session, filters)
            cold = time.perf_counter() - started
            warm_runs = []
            for _ in range(WARM_RUNS):
                started = time.perf_counter()
                query(session, filters)
                warm_runs.append(time.perf_counter() - started)
        engine.dispose()
        warm = statistics.median(warm_runs)
        rows.append(
            {
                "figure": key,
                "rows": len(figure.rows),
                "cold_s": round(cold, 3),
                "warm_s": round(warm, 3),
                "ok": max(cold, warm) < TARGET_SECONDS,
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=1_000_000)
    parser.add_argument("--posts", type=int, default=250)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database", help="SQLite file (default: in the temporary folder)")
    parser.add_argument("--fresh", action="store_true", help="generate again even if reusable")
    args = parser.parse_args(argv)

    url, end, generation = prepare(args)
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}",
        "parameters": _parameters(args),
        "generation_s": None if generation is None else round(generation, 1),
        "target_s": TARGET_SECONDS,
        "views": {},
    }
    if generation is not None:
        print(f"generation: {generation:.1f} s")
    seconds, size = read_through(url)
    results["file_cache_read_s"] = round(seconds, 1)
    print(f"read the {size / 1e9:.2f} GB database once into the OS file cache: {seconds:.1f} s")
    failures = 0
    for name, filters in _views(end, args.days).items():
        rows = measure(url, filters)
        results["views"][name] = {
            "start": filters.start.isoformat(),
            "end": filters.end.isoformat(),
            "figures": rows,
        }
        print(f"\n{name}: {filters.start} to {filters.end}")
        print(f"{'figure':24} {'rows':>6} {'cold s':>8} {'warm s':>8}  target < {TARGET_SECONDS} s")
        for row in rows:
            mark = "ok" if row["ok"] else "SLOW"
            print(
                f"{row['figure']:24} {row['rows']:>6} {row['cold_s']:>8.3f} "
                f"{row['warm_s']:>8.3f}  {mark}"
            )
            failures += 0 if row["ok"] else 1
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
    print(f"\nwritten to {RESULTS.relative_to(ROOT)}")
    return 1 if failures else 0


def read_through(url: str) -> tuple[float, int]:
    """Reads the SQLite file once (and its WAL), so the OS file cache holds it."""
    path = Path(url.split("///", 1)[-1])
    started, size = time.perf_counter(), 0
    for part in (path, path.with_name(path.name + "-wal")):
        if part.exists():
            with part.open("rb") as stream:
                while chunk := stream.read(16 << 20):
                    size += len(chunk)
    return time.perf_counter() - started, size


if __name__ == "__main__":
    sys.exit(main())
