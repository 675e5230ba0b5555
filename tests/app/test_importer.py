"""``bot import``: every row checked first; a bad file writes nothing and says why."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.cli import main
from bot.core.config import get_settings
from bot.db.models import (
    AuditEvent,
    Case,
    GuidanceArticle,
    GuidanceRevision,
    Post,
    RevisionStatus,
    TravelAdvice,
)
from bot.db.session import session_scope
from bot.guidance.store import publish_revision, served_revision
from bot.importer import (
    PostRow,
    export_rows,
    fields,
    import_rows,
    parse_rows,
    to_csv,
    to_json,
    validate_rows,
)

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


# -- export, and guidance articles (the guidance admin's import and export) -----------------

ARTICLE = {
    "topic": "lost-stolen-passport",
    "country": "FR",
    "title": "Lost or stolen passport in France",
    "body": "Report it to the police in {country_name}, then apply for an emergency document.",
    "source_url": "https://www.gov.uk/emergency-travel-document",
    "review_by": "2099-01-01",
    "example_questions": ["lost my passport in Paris", "Lost my passport in  paris", "help"],
}


def test_articles_are_imported_as_drafts_never_published(
    session_factory: sessionmaker[Session],
) -> None:
    with session_scope(session_factory) as session:
        report = import_rows(
            session=session, kind="articles", rows=[ARTICLE], case_key="", author="staff:e@x"
        )
    assert report.ok and report.written
    with session_factory() as session:
        revision = session.scalars(select(GuidanceRevision)).one()
        article = session.get_one(GuidanceArticle, revision.article_id)
        assert (article.topic, article.country) == ("lost-stolen-passport", "FR")
        assert revision.status == RevisionStatus.DRAFT and revision.author == "staff:e@x"
        # Trimmed and de-duplicated without regard to case.
        assert revision.example_questions == ["lost my passport in Paris", "help"]
        assert served_revision(session=session, topic="lost-stolen-passport", country="FR") is None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"topic": "pet-passports"}, "not a topic of the service catalogue"),
        ({"country": "XX"}, "ISO 3166-1"),
        ({"source_url": "http://www.gov.uk/x"}, "source_url: Enter a source URL that starts"),
        ({"review_by": "2001-01-01"}, "must be in the future"),
        ({"review_by": ""}, "review_by: Field required"),
        ({"body": "   "}, "body: Enter the guidance text"),
        ({"example_questions": ["x" * 201]}, "200 characters or fewer"),
    ],
)
def test_bad_articles_are_rejected_with_a_reason(change: dict[str, object], reason: str) -> None:
    _valid, report = validate_rows("articles", [ARTICLE, {**ARTICLE, "country": None}, ARTICLE])
    assert report.rejected == [(3, "duplicate of row 1")]
    _valid, report = validate_rows("articles", [{**ARTICLE, **change}])
    assert len(report.rejected) == 1 and reason in report.rejected[0][1]


def test_an_article_with_a_change_under_way_is_not_imported_over_it(
    session_factory: sessionmaker[Session],
) -> None:
    with session_scope(session_factory) as session:
        import_rows(session=session, kind="articles", rows=[ARTICLE], case_key="", author="a")
    other = {**ARTICLE, "country": "ES", "title": "Lost passport in Spain"}
    with session_scope(session_factory) as session:
        report = import_rows(
            session=session, kind="articles", rows=[other, ARTICLE], case_key="", author="b"
        )
        assert not report.written and report.accepted == 1
        assert report.rejected == [
            (
                2,
                "revision 1 of this article is already a draft; finish that change "
                "before importing a new text",
            )
        ]
        session.rollback()
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(GuidanceArticle)) == 1


def test_importing_a_published_article_starts_a_new_draft_and_is_audited(
    session_factory: sessionmaker[Session],
) -> None:
    with session_scope(session_factory) as session:
        import_rows(session=session, kind="articles", rows=[ARTICLE], case_key="", author="a")
        first = session.scalars(select(GuidanceRevision)).one()
        publish_revision(session=session, revision=first, reviewer="r")
    with session_scope(session_factory) as session:
        changed = {**ARTICLE, "title": "Lost or stolen passport: France"}
        report = import_rows(
            session=session, kind="articles", rows=[changed], case_key="", author="staff:b@x"
        )
        assert report.written
    with session_factory() as session:
        revisions = session.scalars(select(GuidanceRevision).order_by(GuidanceRevision.number))
        assert [(r.number, r.status, r.title) for r in revisions] == [
            (1, RevisionStatus.PUBLISHED, ARTICLE["title"]),
            (2, RevisionStatus.DRAFT, "Lost or stolen passport: France"),
        ]
        actions = session.scalars(
            select(AuditEvent.action).where(AuditEvent.actor == "staff:b@x")
        ).all()
        assert actions == ["guidance.draft_started", "guidance.draft_edited"]


def test_export_then_import_round_trips_posts_and_travel_advice(
    session_factory: sessionmaker[Session],
) -> None:
    with session_scope(session_factory) as session:
        import_rows(
            session=session, kind="posts", rows=parse_rows(HEADER + GOOD_POST, "csv"), case_key=""
        )
        advice = {
            "country": "TH",
            "summary": "Take care in the far south of the country.",
            "advise_against": "all-but-essential-parts",
            "advise_against_areas": "Narathiwat, Pattani, Yala",
            "last_updated": "2026-09-14",
            "url": "https://www.gov.uk/foreign-travel-advice/thailand",
        }
        import_rows(session=session, kind="travel-advice", rows=[advice], case_key="")
    with session_factory() as session:
        posts = export_rows(session=session, kind="posts")
        advice_rows = export_rows(session=session, kind="travel-advice")
    assert advice_rows == [advice]
    exported_csv = to_csv("posts", posts)
    # A phone number starts with "+": a spreadsheet would run it as a formula.
    assert ",'+351 21 392 4000," in exported_csv
    assert exported_csv.splitlines()[0] == ",".join(fields("posts"))
    for text, fmt in ((exported_csv, "csv"), (to_json("posts", posts), "json")):
        valid, report = validate_rows("posts", parse_rows(text, fmt))
        assert report.ok, report.lines()
        assert valid[0].model_dump() == PostRow.model_validate(posts[0]).model_dump()


def test_articles_export_their_live_revision_only(session_factory: sessionmaker[Session]) -> None:
    with session_scope(session_factory) as session:
        import_rows(session=session, kind="articles", rows=[ARTICLE], case_key="")
        draft = session.scalars(select(GuidanceRevision)).one()
        publish_revision(session=session, revision=draft, reviewer="staff:r@x")
        import_rows(
            session=session,
            kind="articles",
            rows=[{**ARTICLE, "title": "A newer draft"}],
            case_key="",
        )
    with session_factory() as session:
        rows = export_rows(session=session, kind="articles")
    assert rows == [{**ARTICLE, "example_questions": ["lost my passport in Paris", "help"]}]
    text = to_csv("articles", rows)
    assert "lost my passport in Paris|help" in text
    assert parse_rows(text, "csv")[0]["example_questions"] == "lost my passport in Paris|help"


@pytest.mark.parametrize("value", ['=HYPERLINK("http://x")', "+1", "-2", "@SUM(A1)", "\tx"])
def test_csv_cells_that_look_like_formulas_are_quoted_and_unquoted(value: str) -> None:
    rows = [{**dict.fromkeys(fields("travel-advice"), ""), "summary": value}]
    text = to_csv("travel-advice", rows)
    assert list(csv.reader(io.StringIO(text)))[1][1] == f"'{value}"
    assert parse_rows(text, "csv")[0]["summary"] == value


@pytest.mark.parametrize(
    ("text", "message"), [("{not json", "not valid JSON"), ('{"a": 1}', "exactly one list")]
)
def test_unparseable_json_is_a_value_error(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_rows(text, "json")
