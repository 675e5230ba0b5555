"""The ``bot`` command: database setup and sample data."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from bot.core.config import get_settings
from bot.db.migrate import upgrade_to_head
from bot.db.session import make_engine, make_session_factory, session_scope
from bot.importer import KINDS, import_rows, read_rows
from bot.seed import seed_all


def _setup(args: argparse.Namespace) -> int:
    settings = get_settings()
    upgrade_to_head(settings.database_url)
    if not args.no_seed:
        engine = make_engine(settings.database_url)
        with session_scope(make_session_factory(engine)) as session:
            report = seed_all(session=session, case_key=settings.case_fact_key)
        engine.dispose()
        for name, added in vars(report).items():
            print(f"sample {name.replace('_', ' ')}: {added} added")
    print("database ready")
    return 0


def _import(args: argparse.Namespace) -> int:
    settings = get_settings()
    try:
        rows = read_rows(args.file)
    except (OSError, ValueError) as exc:
        print(f"cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    engine = make_engine(settings.database_url)
    factory = make_session_factory(engine)
    with session_scope(factory) as session:
        report = import_rows(
            session=session, kind=args.kind, rows=rows, case_key=settings.case_fact_key
        )
        if args.dry_run or not report.ok:
            session.rollback()
            report.written = False
    engine.dispose()
    print("\n".join(report.lines()))
    return 0 if report.ok else 1


def _migrate(_args: argparse.Namespace) -> int:
    upgrade_to_head(get_settings().database_url)
    print("database migrated to head")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``bot`` console script."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(prog="bot", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    setup = commands.add_parser("setup", help="migrate the database and seed sample data once")
    setup.add_argument("--no-seed", action="store_true", help="do not load sample data")
    setup.set_defaults(handler=_setup)

    migrate = commands.add_parser("migrate", help="migrate the database to the newest revision")
    migrate.set_defaults(handler=_migrate)

    importer = commands.add_parser(
        "import",
        help="validate and import real data; nothing is written if any row is rejected",
    )
    importer.add_argument("kind", choices=KINDS)
    importer.add_argument("file", type=Path, help="a .csv (with header) or .json file")
    importer.add_argument("--dry-run", action="store_true", help="validate and report only")
    importer.set_defaults(handler=_import)

    args = parser.parse_args(argv)
    handler = args.handler
    result: int = handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
