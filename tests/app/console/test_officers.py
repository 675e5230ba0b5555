"""``bot officers``: accounts with argon2 hashes and TOTP secrets, shifts, the demo officer."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import time

import pyotp
import pytest
from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.cli import main
from bot.console import officers
from bot.core.config import get_settings
from bot.db.models import CannedReply, Officer, OfficerRole, utcnow
from bot.handoff import rota
from bot.seed import demo_console


@pytest.fixture
def cli_database(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("CONSULAR_DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield database_url
    get_settings.cache_clear()


def test_officers_add_hashes_the_password_and_prints_the_totp_secret_once(
    cli_database: str,
    session_factory: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    code = main(
        [
            "officers",
            "add",
            "--email",
            "Ana@Example.gov.uk",
            "--name",
            "Ana Ops",
            "--role",
            "supervisor",
            "--timezone",
            "Australia/Sydney",
            "--phone",
            "+61 400 000 000",
            "--password-stdin",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    with session_factory() as session:
        ana = session.scalars(select(Officer)).one()
    assert ana.email == "ana@example.gov.uk"
    assert ana.role == OfficerRole.SUPERVISOR
    assert ana.phone == "+61400000000"
    assert ana.totp_secret and ana.totp_secret in printed
    assert "otpauth://totp/" in printed
    assert ana.password_hash.startswith("$argon2id$")
    assert PasswordHasher().verify(ana.password_hash, "a long enough password")


def test_officers_shift_add_puts_the_officer_on_the_rota(
    cli_database: str, session_factory: sessionmaker[Session]
) -> None:
    with session_factory.begin() as session:
        officers.add_officer(
            session=session,
            email="night@example.gov.uk",
            name="Night Owl",
            role="officer",
            timezone="Asia/Tokyo",
            password="a long enough password",
        )
    code = main(
        [
            "officers",
            "shift",
            "add",
            "--email",
            "night@example.gov.uk",
            "--weekday",
            "daily",
            "--starts",
            "00:00",
            "--ends",
            "00:00",
        ]
    )
    assert code == 0
    with session_factory() as session:
        on_duty = rota.on_duty(rota.load_officers(session), utcnow())
    assert [person.email for person in on_duty] == ["night@example.gov.uk"]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("email", "not-an-email", "not an email address"),
        ("role", "boss", "role must be one of"),
        ("timezone", "Mars/Olympus", "not an IANA time zone"),
        ("password", "short", "at least 12 characters"),
        ("phone", "0044 7700", "international form"),
    ],
)
def test_officers_add_refuses_bad_input(
    session_factory: sessionmaker[Session], field: str, value: str, message: str
) -> None:
    values = {
        "email": "ok@example.gov.uk",
        "name": "Ok",
        "role": "officer",
        "timezone": "Europe/London",
        "password": "a long enough password",
        "phone": None,
        field: value,
    }
    with session_factory() as session, pytest.raises(officers.OfficerError, match=message):
        officers.add_officer(session=session, **values)  # type: ignore[arg-type]


def test_weekdays_and_clock_parse_what_people_type() -> None:
    assert officers.weekdays("mon,wed,6") == [0, 2, 6]
    assert officers.weekdays("daily") == list(range(7))
    assert officers.clock("22:30") == time(22, 30)
    with pytest.raises(officers.OfficerError):
        officers.weekdays("t")  # tuesday or thursday?


@pytest.mark.parametrize("role", ["editor", "reviewer"])
def test_officers_add_accepts_the_guidance_roles(
    cli_database: str,
    session_factory: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    role: str,
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    argv = ["officers", "add", "--email", f"{role}@example.gov.uk", "--name", "Gus Guidance"]
    argv += ["--role", role, "--timezone", "Europe/London", "--password-stdin"]
    assert main(argv) == 0
    assert "shift add" not in capsys.readouterr().out  # they work in the admin, not on shifts
    with session_factory() as session:
        assert session.scalars(select(Officer)).one().role == OfficerRole(role)


def test_the_demo_officer_is_seeded_once_locally_and_always_on_duty(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory.begin() as session:
        first = demo_console.seed_demo_console(session=session, environment="local")
    with session_factory.begin() as session:
        second = demo_console.seed_demo_console(session=session, environment="local")
    assert first is not None and first.officer_added and first.canned_replies == 3
    assert first.admin_staff_added == 3
    assert second is not None and not second.officer_added and second.canned_replies == 0
    assert second.admin_staff_added == 0
    with session_factory() as session:
        staff = {o.email: o.role for o in session.scalars(select(Officer))}
        assert staff == {
            demo_console.DEMO_EMAIL: OfficerRole.OFFICER,
            demo_console.DEMO_EDITOR.email: OfficerRole.EDITOR,
            demo_console.DEMO_REVIEWER.email: OfficerRole.REVIEWER,
            demo_console.DEMO_SUPERVISOR.email: OfficerRole.SUPERVISOR,
        }
        on_duty = rota.on_duty(rota.load_officers(session), utcnow())
        assert [o.email for o in on_duty] == [demo_console.DEMO_EMAIL]
        assert len(session.scalars(select(CannedReply)).all()) == 3
    assert pyotp.TOTP(demo_console.DEMO_TOTP_SECRET).now() == demo_console.demo_code()
    codes = demo_console.demo_codes()
    assert codes["editor"] == pyotp.TOTP(demo_console.DEMO_EDITOR.totp_secret).now()
    assert codes["supervisor"] == pyotp.TOTP(demo_console.DEMO_SUPERVISOR.totp_secret).now()
    assert set(codes) == {"officer", "editor", "reviewer", "supervisor"}
    assert demo_console.DEMO_REVIEWER.email in demo_console.sign_in_help("http://localhost")


def test_the_demo_officer_is_never_seeded_in_production(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory.begin() as session:
        assert demo_console.seed_demo_console(session=session, environment="production") is None
        assert session.scalars(select(Officer)).all() == []
