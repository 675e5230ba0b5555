"""The ``bot`` command: database setup and sample data."""

from __future__ import annotations

import argparse
import logging
import sys

from bot.core.config import get_settings
from bot.db.migrate import upgrade_to_head
from bot.db.session import make_engine, make_session_factory, session_scope
from bot.seed import seed_sample_posts


def _setup(args: argparse.Namespace) -> int:
    settings = get_settings()
    upgrade_to_head(settings.database_url)
    if not args.no_seed:
        engine = make_engine(settings.database_url)
        with session_scope(make_session_factory(engine)) as session:
            added = seed_sample_posts(session=session)
        engine.dispose()
        print(f"sample posts: {'added ' + str(added) if added else 'already present'}")
    print("database ready")
    return 0


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

    args = parser.parse_args(argv)
    handler = args.handler
    result: int = handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
