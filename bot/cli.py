"""The ``bot`` command: database setup, sample data, channel setup and officers."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import sys
from pathlib import Path
from typing import Any

from bot.channels import telegram_bot
from bot.console import officers
from bot.core.config import get_settings
from bot.db.migrate import upgrade_to_head
from bot.db.models import OfficerRole, utcnow
from bot.db.session import make_engine, make_session_factory, session_scope
from bot.handoff import rota
from bot.importer import KINDS, import_rows, read_rows
from bot.insight import synthetic as insight_synthetic
from bot.seed import demo_console, seed_all


def _setup(args: argparse.Namespace) -> int:
    settings = get_settings()
    upgrade_to_head(settings.database_url)
    if not args.no_seed:
        engine = make_engine(settings.database_url)
        with session_scope(make_session_factory(engine)) as session:
            report = seed_all(session=session, case_key=settings.case_fact_key)
            demo = demo_console.seed_demo_console(session=session, environment=settings.environment)
        engine.dispose()
        for name, added in vars(report).items():
            print(f"sample {name.replace('_', ' ')}: {added} added")
        if demo is not None:
            state = "added" if demo.officer_added else "already there"
            print(f"demo duty officer ({demo_console.DEMO_EMAIL}, local only): {state}")
            print(f"demo editor, reviewer and supervisor: {demo.admin_staff_added} added")
            print(demo_console.sign_in_help(settings.public_base_url), end="")
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


def _telegram(args: argparse.Namespace) -> int:
    settings = get_settings()
    drop = bool(getattr(args, "drop_pending_updates", False))
    try:
        if args.action == "set-webhook":
            done = telegram_bot.set_webhook(settings, drop_pending_updates=drop)
        elif args.action == "delete-webhook":
            done = telegram_bot.delete_webhook(settings, drop_pending_updates=drop)
        else:
            done = telegram_bot.webhook_status(settings)
        print(asyncio.run(done))
    except telegram_bot.TelegramSetupError as exc:
        print(f"bot telegram {args.action}: {exc}", file=sys.stderr)
        return 2
    return 0


def _officers(args: argparse.Namespace) -> int:
    settings = get_settings()
    if args.action == "demo-code":
        if settings.environment != "local":
            print("bot officers demo-code: the demo account exists only locally", file=sys.stderr)
            return 2
        print(demo_console.demo_codes()[args.role])
        return 0
    password = ""
    if args.action == "add":
        typed = _read_password(args.password_stdin)
        if typed is None:
            return 2
        password = typed
    engine = make_engine(settings.database_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            if args.action == "add":
                created = officers.add_officer(
                    session=session,
                    email=args.email,
                    name=args.name,
                    role=args.role,
                    timezone=args.timezone,
                    phone=args.phone,
                    password=password,
                )
                print(f"officer {created.email} added (id {created.officer_id})")
                print("Give the officer this TOTP secret once, for their authenticator app:")
                print(f"  secret            {created.totp_secret}")
                print(f"  provisioning URI  {created.provisioning_uri}")
                print("It is not shown again.")
                if args.role in {"officer", "supervisor", "admin"}:
                    print("Add shifts with: bot officers shift add ...")
            elif args.action == "shift":
                shifts = officers.add_shifts(
                    session=session,
                    email=args.email,
                    days=officers.weekdays(args.weekday),
                    starts=officers.clock(args.starts),
                    ends=officers.clock(args.ends),
                    on_call=args.on_call,
                )
                print(f"{len(shifts)} shift(s) added for {args.email.strip().lower()}")
            elif args.action == "rota":
                report = rota.coverage_report(rota.load_officers(session), utcnow())
                print("\n".join(report))
                if any(line.startswith("GAP") for line in report):
                    return 1
            else:
                print("\n".join(officers.listing(session)) or "no officers yet")
    except officers.OfficerError as exc:
        print(f"bot officers {args.action}: {exc}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    return 0


def _read_password(from_stdin: bool) -> str | None:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password for the new officer: ")
    if getpass.getpass("The same password again: ") != first:
        print("bot officers add: the passwords differ", file=sys.stderr)
        return None
    return first


def _officers_parser(commands: Any) -> None:
    group = commands.add_parser("officers", help="staff accounts (console and admin) and shifts")
    actions = group.add_subparsers(dest="action", required=True)
    add = actions.add_parser(
        "add",
        help="add a member of staff (prompts for a password; prints the TOTP secret once)",
    )
    add.add_argument("--email", required=True)
    add.add_argument("--name", required=True)
    add.add_argument(
        "--role",
        choices=[role.value for role in OfficerRole],
        default="officer",
        help="officer and supervisor work the console; editor and reviewer the guidance admin; "
        "admin both",
    )
    add.add_argument("--timezone", required=True, help="IANA zone, e.g. Australia/Sydney")
    add.add_argument("--phone", help="for paging by SMS, e.g. +447700900123")
    add.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    shift = actions.add_parser("shift", help="weekly shifts, in the officer's own time zone")
    shift_actions = shift.add_subparsers(dest="shift_action", required=True)
    shift_add = shift_actions.add_parser(
        "add", help="add a weekly shift (ends at or before starts: runs past midnight)"
    )
    shift_add.add_argument("--email", required=True)
    shift_add.add_argument(
        "--weekday", required=True, help="mon..sun, 0..6 (Monday 0), daily, or a comma list"
    )
    shift_add.add_argument("--starts", required=True, help="HH:MM local")
    shift_add.add_argument("--ends", required=True, help="HH:MM local")
    shift_add.add_argument("--on-call", action="store_true", help="a supervisor on call")
    actions.add_parser("list", help="list officers")
    actions.add_parser(
        "rota", help="who is on duty now and the hours of the next week nobody covers"
    )
    demo = actions.add_parser("demo-code", help="a local demo account's current sign-in code")
    demo.add_argument(
        "--role",
        choices=["officer", "editor", "reviewer", "supervisor"],
        default="officer",
        help="which one",
    )
    group.set_defaults(handler=_officers)


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

    telegram = commands.add_parser("telegram", help="connect the Telegram bot")
    telegram_actions = telegram.add_subparsers(dest="action", required=True)
    set_webhook = telegram_actions.add_parser(
        "set-webhook",
        help="register CONSULAR_PUBLIC_BASE_URL/webhooks/telegram and the secret with Telegram",
    )
    delete_webhook = telegram_actions.add_parser(
        "delete-webhook", help="remove the webhook (Telegram then keeps updates for polling)"
    )
    for action in (set_webhook, delete_webhook):
        action.add_argument(
            "--drop-pending-updates",
            action="store_true",
            help="discard updates Telegram is still holding",
        )
    telegram_actions.add_parser("webhook-info", help="show what Telegram knows of the webhook")
    telegram.set_defaults(handler=_telegram)

    _officers_parser(commands)
    insight_synthetic.register(commands)

    args = parser.parse_args(argv)
    handler = args.handler
    result: int = handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
