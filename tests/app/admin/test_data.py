"""Posts and travel advice in the admin: who may change them, checks, audit, served at once."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html import unescape
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.admin import data
from bot.core.config import Settings
from bot.db.models import AuditEvent, GuidanceRevision, Post, RevisionStatus, TravelAdvice
from bot.db.session import session_scope
from bot.guidance.store import publish_revision
from bot.importer import import_rows
from bot.main import create_app
from tests.app.admin.conftest import Browser, token
from tests.app.conftest import INTERNAL_TOKEN
from tests.app.console.conftest import Account

AUTH = {"X-Internal-Token": INTERNAL_TOKEN}
LISBON = {
    "country": "PT",
    "kind": "embassy",
    "name": "British Embassy Lisbon",
    "city": "Lisbon",
    "address": "Rua de Sao Bernardo 33, 1249-082 Lisbon",
    "phone": "+351 21 392 4000",
    "email": "lisbon@example.org",
    "opening_hours": "Monday to Friday, 9am to 1pm",
    "timezone": "Europe/Lisbon",
    "emergency_phone": "+44 20 7008 5000",
    "rank": "0",
}
THAILAND = {
    "country": "TH",
    "summary": "Most visits are trouble-free; take care in the far south.",
    "advise_against": "all-but-essential-parts",
    "advise_against_areas": "Narathiwat, Pattani, Yala",
    "last_updated": "2026-09-14",
    "url": "https://www.gov.uk/foreign-travel-advice/thailand",
}


@dataclass
class Staff:
    """A signed-in member of staff: their own browser and the session's CSRF token."""

    client: TestClient
    token: str
    account: Account

    def post(self, path: str, form: dict[str, str], **kwargs: Any) -> Any:
        return self.client.post(
            path, data={"csrf_token": self.token, **form}, follow_redirects=False, **kwargs
        )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """The app, as a client from the loopback address the rate limits expect."""
    app = create_app(settings)
    with TestClient(app, client=("127.0.0.1", 50000)) as test_client:
        yield test_client


@pytest.fixture
def staff(request: pytest.FixtureRequest, browser: Browser) -> Callable[[str], Staff]:
    """Signs in the admin conftest's editor, reviewer or admin, in a browser of their own."""

    def make(role: str) -> Staff:
        account: Account = request.getfixturevalue(role)
        signed_in = browser(account)
        return Staff(signed_in, token(signed_in, "/admin/import-export"), account)

    return make


@pytest.fixture
def lisbon(session_factory: sessionmaker[Session]) -> int:
    with session_scope(session_factory) as session:
        report = import_rows(session=session, kind="posts", rows=[LISBON], case_key="")
        assert report.written
        return session.scalars(select(Post.id)).one()


@pytest.fixture
def thailand(session_factory: sessionmaker[Session]) -> int:
    with session_scope(session_factory) as session:
        assert import_rows(session=session, kind="travel-advice", rows=[THAILAND], case_key="").ok
        return session.scalars(select(TravelAdvice.id)).one()


def form_values(html: str) -> dict[str, str]:
    """The values a form shows (inputs, textareas and selected options)."""
    values = {
        name: unescape(value)
        for name, value in re.findall(
            r'<input class="govuk-input[^"]*" id="[^"]+" name="([^"]+)"[^>]* value="([^"]*)"', html
        )
    }
    for name, value in re.findall(r'name="([^"]+)" rows="\d+"[^>]*>([^<]*)</textarea>', html):
        values[name] = unescape(value)
    for name, body in re.findall(r'<select[^>]* name="([^"]+)"[^>]*>(.*?)</select>', html, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected>', body)
        values[name] = chosen.group(1) if chosen else ""
    values["fingerprint"] = re.search(r'name="fingerprint" value="([^"]*)"', html).group(1)
    return values


def audit_events(factory: sessionmaker[Session], action: str) -> list[AuditEvent]:
    with factory() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


# -- posts ---------------------------------------------------------------------------------


def test_a_reviewers_change_to_a_post_is_served_at_once_and_audited(
    staff: Callable[[str], Staff], lisbon: int, session_factory: sessionmaker[Session]
) -> None:
    reviewer = staff("reviewer")
    page = reviewer.client.get(f"/admin/posts/{lisbon}")
    assert page.status_code == 200 and "Save changes" in page.text
    values = form_values(page.text)
    values["opening_hours"] = "Monday to Thursday, 9am to noon"
    saved = reviewer.post(f"/admin/posts/{lisbon}", values)
    assert saved.status_code == 303 and saved.headers["location"].endswith("?done=saved")
    assert "Your changes have been saved" in reviewer.client.get(saved.headers["location"]).text
    served = reviewer.client.get("/api/internal/posts", params={"country": "PT"}, headers=AUTH)
    assert served.json()["posts"][0]["opening_hours"] == "Monday to Thursday, 9am to noon"
    (event,) = audit_events(session_factory, "admin.post_updated")
    assert event.actor == "staff:rita@example.gov.uk" and event.subject == f"post:{lisbon}"
    assert event.details == {
        "before": {"opening_hours": "Monday to Friday, 9am to 1pm"},
        "after": {"opening_hours": "Monday to Thursday, 9am to noon"},
    }


def test_editors_see_posts_but_cannot_change_them(
    staff: Callable[[str], Staff], lisbon: int, session_factory: sessionmaker[Session]
) -> None:
    editor = staff("editor")
    listing = editor.client.get("/admin/posts")
    assert listing.status_code == 200 and "British Embassy Lisbon" in listing.text
    assert "Add a post" not in listing.text
    page = editor.client.get(f"/admin/posts/{lisbon}")
    assert "Only reviewers and administrators can change posts" in page.text
    assert 'name="opening_hours"' not in page.text
    refused = editor.post(f"/admin/posts/{lisbon}", {**LISBON, "opening_hours": "Closed"})
    assert refused.status_code == 403
    assert editor.client.get("/admin/posts/new").status_code == 403
    assert editor.post(f"/admin/posts/{lisbon}/delete", {}).status_code == 403
    with session_factory() as session:
        assert session.get_one(Post, lisbon).opening_hours == LISBON["opening_hours"]


def test_a_wrong_post_form_shows_an_error_summary_and_changes_nothing(
    staff: Callable[[str], Staff], lisbon: int, session_factory: sessionmaker[Session]
) -> None:
    reviewer = staff("reviewer")
    values = form_values(reviewer.client.get(f"/admin/posts/{lisbon}").text)
    wrong = {**values, "phone": "call reception", "timezone": "Mars/Olympus", "name": ""}
    response = reviewer.post(f"/admin/posts/{lisbon}", wrong)
    assert response.status_code == 400
    page = response.text
    assert "<title>Error: " in page and "There is a problem" in page
    assert '<a href="#name">Enter the post&#39;s name</a>' in page
    assert '<a href="#phone">Enter the phone number in international format' in page
    assert '<a href="#timezone">Enter an IANA time zone' in page
    # The summary follows the order of the form, and the answers are kept.
    assert page.index('href="#name"') < page.index('href="#phone"') < page.index('href="#timezone"')
    assert 'value="call reception"' in page and 'aria-describedby="phone-hint phone-error"' in page
    with session_factory() as session:
        assert session.get_one(Post, lisbon).phone == LISBON["phone"]
    assert audit_events(session_factory, "admin.post_updated") == []


def test_a_save_over_someone_elses_change_is_refused(
    staff: Callable[[str], Staff], lisbon: int, session_factory: sessionmaker[Session]
) -> None:
    first, second = staff("reviewer"), staff("admin")
    drawn = form_values(first.client.get(f"/admin/posts/{lisbon}").text)
    mine = form_values(second.client.get(f"/admin/posts/{lisbon}").text)
    assert first.post(f"/admin/posts/{lisbon}", {**drawn, "city": "Lisboa"}).status_code == 303
    late = second.post(f"/admin/posts/{lisbon}", {**mine, "email": "other@example.org"})
    assert late.status_code == 409
    assert "Someone else changed this post while you were editing it" in late.text
    assert 'value="Lisboa"' in late.text
    with session_factory() as session:
        post = session.get_one(Post, lisbon)
        assert (post.city, post.email) == ("Lisboa", LISBON["email"])


def test_posts_are_added_and_deleted_after_confirmation(
    staff: Callable[[str], Staff], lisbon: int, session_factory: sessionmaker[Session]
) -> None:
    admin = staff("admin")
    assert admin.client.get("/admin/posts/new").status_code == 200
    porto = {**LISBON, "name": "British Consulate Porto", "city": "Porto", "kind": "consulate"}
    created = admin.post("/admin/posts/new", {**porto, "fingerprint": ""})
    assert created.status_code == 303 and created.headers["location"].endswith("?done=created")
    again = admin.post("/admin/posts/new", {**porto, "fingerprint": ""})
    assert again.status_code == 400 and "There is already a consulate in Porto, PT" in again.text
    porto_id = int(created.headers["location"].split("/")[-1].split("?")[0])

    confirm = admin.client.get(f"/admin/posts/{porto_id}/delete")
    assert "Are you sure you want to delete British Consulate Porto?" in confirm.text
    deleted = admin.post(f"/admin/posts/{porto_id}/delete", {})
    assert deleted.status_code == 303 and deleted.headers["location"].endswith("?done=deleted")
    with session_factory() as session:
        assert session.get(Post, porto_id) is None
    (made,) = audit_events(session_factory, "admin.post_created")
    (gone,) = audit_events(session_factory, "admin.post_deleted")
    assert made.details["after"]["city"] == "Porto"
    assert gone.details["before"]["name"] == "British Consulate Porto"


def test_the_post_list_filters_by_country_and_searches(
    staff: Callable[[str], Staff], lisbon: int, session_factory: sessionmaker[Session]
) -> None:
    with session_scope(session_factory) as session:
        madrid = {
            **LISBON,
            "country": "ES",
            "city": "Madrid",
            "name": "British Embassy Madrid",
            "address": "Calle de Fernando el Santo 16, Madrid",
            "email": "madrid@example.org",
        }
        import_rows(session=session, kind="posts", rows=[madrid], case_key="")
    editor = staff("editor")
    spain = editor.client.get("/admin/posts", params={"country": "es"}).text
    assert "British Embassy Madrid" in spain and "British Embassy Lisbon" not in spain
    found = editor.client.get("/admin/posts", params={"q": "lisb"}).text
    assert "British Embassy Lisbon" in found and "British Embassy Madrid" not in found
    assert "1 post matches your filters" in found
    wrong = editor.client.get("/admin/posts", params={"country": "XX"})
    assert "Enter a 2-letter country code" in wrong.text


def test_forms_without_the_csrf_token_are_refused(
    staff: Callable[[str], Staff], lisbon: int
) -> None:
    admin = staff("admin")
    response = admin.client.post(
        f"/admin/posts/{lisbon}/delete", data={"csrf_token": "forged"}, follow_redirects=False
    )
    assert response.status_code == 403


def test_signed_out_staff_are_sent_to_sign_in(client: TestClient, lisbon: int) -> None:
    anonymous = TestClient(client.app, client=("127.0.0.1", 50999))
    response = anonymous.get(f"/admin/posts/{lisbon}", follow_redirects=False)
    assert response.status_code == 303 and "/console/sign-in" in response.headers["location"]


# -- travel advice -------------------------------------------------------------------------


def test_travel_advice_follows_the_importers_rules_and_is_served_at_once(
    staff: Callable[[str], Staff], thailand: int, session_factory: sessionmaker[Session]
) -> None:
    reviewer = staff("reviewer")
    page = reviewer.client.get(f"/admin/travel-advice/{thailand}")
    assert "Travel advice for Thailand" in page.text
    values = form_values(page.text)
    assert values["advise_against"] == "all-but-essential-parts"
    no_areas = reviewer.post(
        f"/admin/travel-advice/{thailand}", {**values, "advise_against_areas": ""}
    )
    assert no_areas.status_code == 400
    assert '<a href="#advise_against_areas">Enter the areas the warning covers</a>' in no_areas.text
    bad_date = reviewer.post(f"/admin/travel-advice/{thailand}", {**values, "last_updated": "May"})
    assert '<a href="#last_updated">Enter the date as a real date' in bad_date.text
    # The country cannot be changed on edit, even by a forged field.
    changed = {**values, "advise_against": "all", "advise_against_areas": "", "country": "FR"}
    assert reviewer.post(f"/admin/travel-advice/{thailand}", changed).status_code == 303
    served = reviewer.client.get(
        "/api/internal/travel-advice", params={"country": "TH"}, headers=AUTH
    ).json()
    assert served["advise_against"] == "all"
    (event,) = audit_events(session_factory, "admin.travel_advice_updated")
    assert event.details["before"] == {
        "advise_against": "all-but-essential-parts",
        "advise_against_areas": "Narathiwat, Pattani, Yala",
    }


def test_saving_unchanged_travel_advice_writes_no_audit_event(
    staff: Callable[[str], Staff], thailand: int, session_factory: sessionmaker[Session]
) -> None:
    admin = staff("admin")
    values = form_values(admin.client.get(f"/admin/travel-advice/{thailand}").text)
    response = admin.post(f"/admin/travel-advice/{thailand}", values)
    assert response.headers["location"].endswith("?done=unchanged")
    assert audit_events(session_factory, "admin.travel_advice_updated") == []


# -- import and export ---------------------------------------------------------------------

POSTS_HEADER = ",".join(LISBON) + "\n"


def csv_line(row: dict[str, str]) -> str:
    return ",".join(f'"{value}"' for value in row.values()) + "\n"


def upload(
    who: Staff, content: bytes, *, kind: str = "posts", fmt: str = "csv", check_only: bool = False
) -> Any:
    form = {"kind": kind, "format": fmt, **({"check_only": "yes"} if check_only else {})}
    return who.post("/admin/import", form, files={"file": (f"upload.{fmt}", content, "text/plain")})


def count_posts(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return len(session.scalars(select(Post.id)).all())


def test_an_import_with_bad_rows_writes_nothing_and_lists_each_row(
    staff: Callable[[str], Staff], session_factory: sessionmaker[Session]
) -> None:
    admin = staff("admin")
    bad = {**LISBON, "country": "XX", "city": "Nowhere"}
    worse = {**LISBON, "city": "Porto", "timezone": "Mars/Olympus", "phone": "<b>call</b>"}
    content = POSTS_HEADER + csv_line(LISBON) + csv_line(bad) + csv_line(worse)
    response = upload(admin, content.encode())
    assert response.status_code == 400
    page = response.text
    assert "Nothing was imported" in page and "2 rows of the file have problems (1 valid)" in page
    rows = re.findall(r'<th scope="row" class="govuk-table__header">(\d+)</th>', page)
    assert rows == ["2", "3"]
    assert "ISO 3166-1" in page and "timezone" in page
    # What the file said is shown escaped, never as markup.
    assert "<b>call</b>" not in page
    assert count_posts(session_factory) == 0
    assert audit_events(session_factory, "admin.imported") == []


def test_a_checked_file_is_not_written_and_an_imported_one_is_served(
    staff: Callable[[str], Staff], session_factory: sessionmaker[Session]
) -> None:
    admin = staff("admin")
    content = (POSTS_HEADER + csv_line(LISBON)).encode("utf-8-sig")
    checked = upload(admin, content, check_only=True)
    assert checked.status_code == 200
    assert "All 1 row of posts are valid. Nothing was written" in checked.text
    assert count_posts(session_factory) == 0
    imported = upload(admin, content)
    assert "1 row of posts imported" in imported.text
    served = admin.client.get("/api/internal/posts", params={"country": "PT"}, headers=AUTH)
    assert served.json()["posts"][0]["name"] == "British Embassy Lisbon"
    (event,) = audit_events(session_factory, "admin.imported")
    assert event.subject == "posts" and event.details == {"format": "csv", "rows": 1}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "Choose a file to import"),
        (b"\xff\xfe\x00bad", "The file must be saved as UTF-8 text"),
        (b"country,kind\n", "The file has no rows"),
    ],
)
def test_unusable_files_are_refused_with_a_clear_error(
    staff: Callable[[str], Staff], content: bytes, message: str
) -> None:
    admin = staff("admin")
    if content:
        response = upload(admin, content)
    else:
        response = admin.post("/admin/import", {"kind": "posts", "format": "csv"})
    assert response.status_code == 400
    assert '<a href="#file">' + message in response.text


def test_a_file_just_over_the_import_limit_gets_the_pages_error(
    staff: Callable[[str], Staff], settings: Settings
) -> None:
    admin = staff("admin")
    too_big = b"x" * (settings.admin_import_max_bytes - data.FORM_OVERHEAD_BYTES + 10)
    response = upload(admin, too_big)
    assert response.status_code == 400
    limit_kb = (settings.admin_import_max_bytes - data.FORM_OVERHEAD_BYTES) // 1024
    assert f"The file must be smaller than {limit_kb} KB" in response.text


def test_only_admins_import_and_only_reviewers_and_admins_export(
    staff: Callable[[str], Staff], lisbon: int
) -> None:
    editor, reviewer = staff("editor"), staff("reviewer")
    assert (
        "Only administrators can import files" in reviewer.client.get("/admin/import-export").text
    )
    assert upload(reviewer, (POSTS_HEADER + csv_line(LISBON)).encode()).status_code == 403
    assert editor.client.get("/admin/export/posts.csv").status_code == 403
    page = editor.client.get("/admin/import-export").text
    assert "Reviewers and administrators can export" in page and "/admin/export/" not in page


def test_exports_download_in_the_imports_format_safe_for_spreadsheets(
    staff: Callable[[str], Staff], lisbon: int, session_factory: sessionmaker[Session]
) -> None:
    reviewer = staff("reviewer")
    response = reviewer.client.get("/admin/export/posts.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert re.match(
        r'attachment; filename="posts-\d{4}-\d{2}-\d{2}\.csv"',
        response.headers["content-disposition"],
    )
    # Phone numbers start with "+": quoted, so a spreadsheet never runs them.
    assert "'+351 21 392 4000" in response.text and "'+44 20 7008 5000" in response.text
    as_json = reviewer.client.get("/admin/export/travel-advice.json")
    assert as_json.json() == {"travel-advice": []}
    assert reviewer.client.get("/admin/export/cases.csv").status_code == 404
    assert [e.subject for e in audit_events(session_factory, "admin.exported")] == [
        "posts",
        "travel-advice",
    ]


ARTICLE = {
    "topic": "lost-stolen-passport",
    "country": "PT",
    "title": "Lost or stolen passport in Portugal",
    "body": "Report it to the police in {country_name}, then apply for an emergency document.",
    "source_url": "https://www.gov.uk/emergency-travel-document",
    "review_by": "2099-01-01",
    "example_questions": ["lost my passport in Lisbon"],
}


def test_imported_articles_are_drafts_for_review_and_export_once_published(
    staff: Callable[[str], Staff], session_factory: sessionmaker[Session]
) -> None:
    admin = staff("admin")
    response = upload(admin, json.dumps([ARTICLE]).encode(), kind="articles", fmt="json")
    assert response.status_code == 200
    assert "Each article is now a draft" in response.text
    with session_factory() as session:
        revision = session.scalars(select(GuidanceRevision)).one()
        assert revision.status == RevisionStatus.DRAFT
        assert revision.author == "staff:ada@example.gov.uk"
    # Nothing is published, so nothing is exported yet.
    assert admin.client.get("/admin/export/articles.json").json() == {"articles": []}
    with session_scope(session_factory) as session:
        publish_revision(
            session=session, revision=session.get_one(GuidanceRevision, revision.id), reviewer="r"
        )
    exported = admin.client.get("/admin/export/articles.csv").text
    assert exported.splitlines()[0] == (
        "topic,country,title,body,source_url,review_by,example_questions"
    )
    assert "lost my passport in Lisbon" in exported
