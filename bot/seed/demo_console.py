"""One demo duty officer (and a few ready-made replies) for trying the console locally.

Never seeded outside the local environment: the password and TOTP secret
below are published in this file, so the account is a demonstration only.
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
    return DemoReport(officer_added=added, canned_replies=canned)


def demo_code() -> str:
    """The demo officer's current code (what an authenticator app would show)."""
    return pyotp.TOTP(DEMO_TOTP_SECRET).now()


def sign_in_help(base_url: str) -> str:
    """How to sign in to the local console as the demo officer."""
    return (
        f"    duty console      {base_url}/console/sign-in (demo account, local only)\n"
        f"      email           {DEMO_EMAIL}\n"
        f"      password        {DEMO_PASSWORD}\n"
        f"      code            .venv/bin/bot officers demo-code "
        f"(or add TOTP secret {DEMO_TOTP_SECRET} to an authenticator app)\n"
    )
