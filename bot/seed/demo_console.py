"""Demo staff for trying the service locally: a duty officer, a guidance editor and a reviewer.

Also a few ready-made replies for the console. Never seeded outside the local
environment: the passwords and TOTP secrets below are published in this file,
so the accounts are a demonstration only (and never sign in elsewhere).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time

import pyotp
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.console import auth, officers
from bot.db.models import CannedReply

DEMO_EMAIL = "duty.officer@example.gov.uk"
DEMO_NAME = "Demo Duty Officer"
DEMO_PASSWORD = "demo-duty-officer-password"
# Published on purpose (a demo account): any authenticator app can add it.
DEMO_TOTP_SECRET = "DEMOCONSULARDUTYOFFICERAAAAAAAAA"
DEMO_TIMEZONE = "Europe/London"


@dataclass(frozen=True)
class DemoStaff:
    """A published demo account for the guidance admin."""

    email: str
    name: str
    role: str
    password: str
    totp_secret: str


# An editor writes changes and a reviewer approves them: two people, as the workflow asks.
DEMO_EDITOR = DemoStaff(
    email="guidance.editor@example.gov.uk",
    name="Demo Guidance Editor",
    role="editor",
    password="demo-guidance-editor-password",
    totp_secret="DEMOCONSULARGUIDANCEEDITORAAAAAA",
)
DEMO_REVIEWER = DemoStaff(
    email="guidance.reviewer@example.gov.uk",
    name="Demo Guidance Reviewer",
    role="reviewer",
    password="demo-guidance-reviewer-password",
    totp_secret="DEMOCONSULARGUIDANCEREVIEWERAAAA",
)
# A supervisor sees the insight dashboard (and works the console like an officer).
DEMO_SUPERVISOR = DemoStaff(
    email="duty.supervisor@example.gov.uk",
    name="Demo Duty Supervisor",
    role="supervisor",
    password="demo-duty-supervisor-password",
    totp_secret="DEMOCONSULARDUTYSUPERVISORAAAAAA",
)
DEMO_ADMIN_STAFF = (DEMO_EDITOR, DEMO_REVIEWER, DEMO_SUPERVISOR)
# Every published demo address: none of them may sign in outside local.
DEMO_EMAILS = frozenset({DEMO_EMAIL, *(staff.email for staff in DEMO_ADMIN_STAFF)})

SAMPLE_CANNED_REPLIES = {
    "Introduce yourself": (
        "Hello, I'm a consular officer at the Foreign, Commonwealth and Development "
        "Office. I've read your conversation so far. How can I help?"
    ),
    "Ask for a callback number": (
        "So that we can call you, please send a phone number with its country code "
        "and a time that suits you."
    ),
    "Emergency services first": (
        "If anyone is in immediate danger, please call the local emergency services "
        "first, then come back to this conversation."
    ),
}


@dataclass(frozen=True)
class DemoReport:
    """What seeding did."""

    officer_added: bool
    canned_replies: int
    admin_staff_added: int = 0


def seed_demo_console(*, session: Session, environment: str) -> DemoReport | None:
    """Adds the demo officer (on duty all week) and sample replies; local only."""
    if environment != "local":
        return None
    added = False
    if auth.find_officer(session=session, email=DEMO_EMAIL) is None:
        officers.add_officer(
            session=session,
            email=DEMO_EMAIL,
            name=DEMO_NAME,
            role="officer",
            timezone=DEMO_TIMEZONE,
            password=DEMO_PASSWORD,
            totp_secret=DEMO_TOTP_SECRET,
            actor="seed",
        )
        # starts == ends: the whole day, every day of the week.
        officers.add_shifts(
            session=session,
            email=DEMO_EMAIL,
            days=list(range(7)),
            starts=time(0, 0),
            ends=time(0, 0),
            actor="seed",
        )
        added = True
    canned = 0
    if not session.scalar(select(func.count()).select_from(CannedReply)):
        for title, text in SAMPLE_CANNED_REPLIES.items():
            session.add(CannedReply(title=title, text=text))
            canned += 1
    staff_added = 0
    for staff in DEMO_ADMIN_STAFF:
        if auth.find_officer(session=session, email=staff.email) is None:
            officers.add_officer(
                session=session,
                email=staff.email,
                name=staff.name,
                role=staff.role,
                timezone=DEMO_TIMEZONE,
                password=staff.password,
                totp_secret=staff.totp_secret,
                actor="seed",
            )
            staff_added += 1
    return DemoReport(officer_added=added, canned_replies=canned, admin_staff_added=staff_added)


def demo_code() -> str:
    """The demo officer's current code (what an authenticator app would show)."""
    return pyotp.TOTP(DEMO_TOTP_SECRET).now()


def demo_codes() -> dict[str, str]:
    """Every demo account's current code, by role (officer, editor, reviewer, supervisor)."""
    codes = {"officer": demo_code()}
    codes.update({staff.role: pyotp.TOTP(staff.totp_secret).now() for staff in DEMO_ADMIN_STAFF})
    return codes


def sign_in_help(base_url: str) -> str:
    """How to sign in locally as the demo officer, editor, reviewer and supervisor."""
    lines = [
        f"    duty console      {base_url}/console/sign-in (demo account, local only)\n",
        f"      email           {DEMO_EMAIL}\n",
        f"      password        {DEMO_PASSWORD}\n",
        "      code            .venv/bin/bot officers demo-code "
        f"(or add TOTP secret {DEMO_TOTP_SECRET} to an authenticator app)\n",
        f"    guidance admin    {base_url}/admin (demo accounts, local only; same sign-in;\n"
        "                      the supervisor sees the dashboard at /admin/dashboard)\n",
    ]
    for staff in DEMO_ADMIN_STAFF:
        lines += [
            f"      {staff.role:<10}  email {staff.email}  password {staff.password}\n",
            f"                code: .venv/bin/bot officers demo-code --role {staff.role} "
            f"(or TOTP secret {staff.totp_secret})\n",
        ]
    return "".join(lines)
