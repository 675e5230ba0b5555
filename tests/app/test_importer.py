"""``bot import``: every row checked first; a bad file writes nothing and says why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.cli import main
from bot.core.config import get_settings
from bot.db.models import Case, Post, TravelAdvice

HEADER = "country,kind,name,city,address,phone,email,opening_hours,timezone,emergency_phone\n"
GOOD_POST = (
    "PT,embassy,British Embassy Lisbon,Lisbon,Rua de Sao Bernardo 33,+351 21 392 4000,"
    "lisbon@example.org,Mon-Fri 9-13,Europe/Lisbon,+44 20 7008 5000\n"
)


@pytest.fixture
def cli_database(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("CONSULAR_DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield database_url
    get_settings.cache_clear()


def count(factory: sessionmaker[Session], model: type) -> int:
    with factory() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_good_csv_is_imported_and_reimport_updates(
    tmp_path: Path, cli_database: str, session_factory: sessionmaker[Session], capsys
) -> None:
    path = tmp_path / "posts.csv"
    path.write_text(HEADER + GOOD_POST)
    assert main(["import", "posts", str(path)]) == 0
    path.write_text(HEADER + GOOD_POST.replace("Mon-Fri 9-13", "Mon-Thu 9-12"))
    assert main(["import", "posts", str(path)]) == 0
    assert count(session_factory, Post) == 1
    with session_factory() as session:
        post = session.scalars(select(Post)).one()
    assert post.opening_hours == "Mon-Thu 9-12" and post.is_sample is False
    assert "1 valid, 0 rejected; written" in capsys.readouterr().out


def test_malformed_csv_changes_nothing_and_reports_every_bad_row(
    tmp_path: Path, cli_database: str, session_factory: sessionmaker[Session], capsys
) -> None:
    path = tmp_path / "posts.csv"
    path.write_text(
        HEADER
        + GOOD_POST
        + "XX,embassy,Bad country,City,Addr 1,+1 555 0100,a@b.org,9-5,UTC,+44 20 7008 5000\n"
        + GOOD_POST.replace("Europe/Lisbon", "Mars/Olympus")
        + GOOD_POST.replace("embassy", "palace").replace("Lisbon,", "Porto,")
        + GOOD_POST.replace("+351 21 392 4000", "call us")
        + GOOD_POST
    )
    assert main(["import", "posts", str(path)]) == 1
    report = capsys.readouterr().out
    assert "1 valid, 5 rejected; nothing written" in report
    assert "row 2: country" in report and "ISO 3166-1" in report
    assert "row 3: timezone" in report
    assert "row 4: kind" in report
    assert "row 5: phone" in report
    assert "row 6: duplicate of row 1" in report
    assert count(session_factory, Post) == 0


def test_json_travel_advice_with_missing_areas_is_rejected(
    tmp_path: Path, cli_database: str, session_factory: sessionmaker[Session], capsys
) -> None:
    rows = [
        {
            "country": "TH",
            "summary": "Take care in the far south.",
            "advise_against": "all-but-essential-parts",
            "last_updated": "2026-09-14",
            "url": "https://www.gov.uk/foreign-travel-advice/thailand",
        },
        {"country": "FR", "summary": "x", "last_updated": "yesterday", "url": "ftp://x"},
    ]
    path = tmp_path / "advice.json"
    path.write_text(json.dumps({"advice": rows}))
    assert main(["import", "travel-advice", str(path)]) == 1
    report = capsys.readouterr().out
    assert "row 1: " in report and "advise_against_areas is required" in report
    assert "row 2:" in report and "summary" in report and "last_updated" in report
    assert count(session_factory, TravelAdvice) == 0


def test_cases_are_stored_with_hashed_facts(
    tmp_path: Path, cli_database: str, session_factory: sessionmaker[Session]
) -> None:
    case = {
        "reference": "CON-2026-000777",
        "case_type": "hospital-abroad",
        "status": "Open",
        "next_step": "We will call you",
        "surname": "Realname",
        "date_of_birth": "1990-01-02",
        "timeline": "Reported|Family informed",
    }
    path = tmp_path / "cases.csv"
    path.write_text(",".join(case) + "\n" + ",".join(case.values()) + "\n")
    assert main(["import", "cases", str(path)]) == 0
    with session_factory() as session:
        stored = session.scalars(select(Case)).one()
        assert "Realname" not in stored.surname_hash and len(stored.timeline) == 2


def test_dry_run_writes_nothing(
    tmp_path: Path, cli_database: str, session_factory: sessionmaker[Session], capsys
) -> None:
    path = tmp_path / "posts.csv"
    path.write_text(HEADER + GOOD_POST)
    assert main(["import", "posts", str(path), "--dry-run"]) == 0
    assert "nothing written" in capsys.readouterr().out
    assert count(session_factory, Post) == 0


@pytest.mark.parametrize(
    ("name", "content"),
    [("posts.txt", "x"), ("posts.json", "{not json"), ("posts.json", '{"a": 1}')],
)
def test_unreadable_files_are_refused(
    tmp_path: Path, cli_database: str, name: str, content: str, capsys
) -> None:
    path = tmp_path / name
    path.write_text(content)
    assert main(["import", "posts", str(path)]) == 2
    assert "cannot read" in capsys.readouterr().err
