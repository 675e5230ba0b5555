"""The article pages: list and filters, the editor and its previews, history, diff, rollback."""

from __future__ import annotations

import re
from datetime import date, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from bot.db.models import AuditEvent, GuidanceArticle, GuidanceRevision, RevisionStatus
from bot.db.session import session_scope
from tests.app.admin.conftest import LOST_PASSPORT, Browser, revision_ids, token
from tests.app.conftest import INTERNAL_TOKEN
from tests.app.console.conftest import Account

EDIT = re.compile(r'href="(/admin/articles/\d+/revisions/\d+/edit)"')


def served(client: TestClient, country: str | None = None) -> str:
    params = {"topic": "lost-stolen-passport", **({"country": country} if country else {})}
    response = client.get(
        "/api/internal/guidance", params=params, headers={"X-Internal-Token": INTERNAL_TOKEN}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["markdown"])


def fields(**changes: str) -> dict[str, str]:
    base = {
        "title": "Lost or stolen passport abroad",
        "body": "Report it to the police, then apply for an emergency travel document online.",
        "source_url": "https://www.gov.uk/emergency-travel-document",
        "review_by": (date.today() + timedelta(days=180)).isoformat(),
        "example_questions": "i lost my passport\nmy passport was stolen",
        "change_note": "Shorter first step",
        "action": "save",
    }
    return {**base, **changes}


def open_draft(staff: TestClient, article_id: int) -> str:
    """Starts (or reopens) the article's draft; returns its edit path."""
    response = staff.post(
        f"/admin/articles/{article_id}/drafts",
        data={"csrf_token": token(staff)},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return str(response.headers["location"])


def save(staff: TestClient, edit_path: str, **changes: str) -> TestClient:
    return staff.post(  # type: ignore[return-value]
        edit_path, data={**fields(**changes), "csrf_token": token(staff)}, follow_redirects=False
    )


# -- the list ------------------------------------------------------------------------------


def test_the_list_shows_articles_and_flags_overdue_reviews(
    browser: Browser,
    editor: Account,
    lost_passport: int,
    session_factory: sessionmaker[Session],
) -> None:
    with session_scope(session_factory) as session:
        session.execute(
            update(GuidanceRevision)
            .where(GuidanceRevision.article_id == lost_passport)
            .values(review_by=date(2020, 1, 1))
        )
    staff = browser(editor)
    page = staff.get("/admin/articles")
    assert "Lost or stolen passport abroad" in page.text
    assert "Overdue" in page.text
    assert staff.get("/admin/articles?review=overdue").text.count("/admin/articles/") >= 1
    empty = staff.get("/admin/articles?review=due-soon")
    assert f'/admin/articles/{lost_passport}"' not in empty.text
    assert "0 articles match your filters" in empty.text


def test_filters_and_search(browser: Browser, editor: Account, lost_passport: int) -> None:
    staff = browser(editor)
    link = f'href="/admin/articles/{lost_passport}"'
    assert link in staff.get("/admin/articles?topic=lost-stolen-passport").text
    assert link not in staff.get("/admin/articles?topic=death-abroad").text
    assert link in staff.get("/admin/articles?country=generic").text
    assert link not in staff.get("/admin/articles?country=ES").text
    assert link in staff.get("/admin/articles?status=published").text
    assert link not in staff.get("/admin/articles?status=draft").text
    assert link in staff.get("/admin/articles?q=EMERGENCY+travel").text  # the body
    assert link in staff.get("/admin/articles?q=lost+my").text  # an example question
    assert link not in staff.get("/admin/articles?q=kidnap").text
    # A draft shows in the draft filter once one is started.
    open_draft(staff, lost_passport)
    assert link in staff.get("/admin/articles?status=draft").text


# -- editing -------------------------------------------------------------------------------


def test_an_editor_changes_an_article_and_submits_it_and_nothing_is_served_yet(
    browser: Browser,
    editor: Account,
    client: TestClient,
    lost_passport: int,
    session_factory: sessionmaker[Session],
) -> None:
    staff = browser(editor)
    edit_path = open_draft(staff, lost_passport)
    assert edit_path.endswith("/edit")
    form = staff.get(edit_path)
    assert "Edit the draft" in form.text
    assert "Report it to the police in {country_name}" in form.text  # copied from the live text
    saved = save(staff, edit_path, body="A draft nobody sees.")
    assert saved.headers["location"] == f"/admin/articles/{lost_passport}?done=saved"
    assert served(client) == LOST_PASSPORT.replace("{country_name}", "the country")
    submitted = save(staff, edit_path, body="Submitted text.", action="submit")
    assert submitted.headers["location"] == f"/admin/articles/{lost_passport}?done=submitted"
    page = staff.get(submitted.headers["location"])
    assert "waiting for review" in page.text
    assert served(client).startswith("Report it to the police")
    with session_factory() as session:
        latest = session.get_one(GuidanceRevision, revision_ids(session_factory, lost_passport)[-1])
        assert (latest.status, latest.body) == (RevisionStatus.IN_REVIEW, "Submitted text.")
        assert latest.author == latest.submitted_by == f"staff:{editor.email}"
        assert latest.example_questions == ["i lost my passport", "my passport was stolen"]
        assert "guidance.submitted" in session.scalars(select(AuditEvent.action)).all()
    # Submitted: no longer editable.
    assert staff.get(edit_path, follow_redirects=False).status_code == 303


def test_the_editor_says_what_is_wrong(
    browser: Browser, editor: Account, lost_passport: int
) -> None:
    staff = browser(editor)
    edit_path = open_draft(staff, lost_passport)
    response = save(
        staff,
        edit_path,
        title="",
        source_url="http://insecure.example",
        review_by="2001-01-01",
        change_note="",
    )
    assert response.status_code == 400
    for message in (
        "Enter a title",
        "Enter a source URL that starts with https://",
        "The review-by date must be in the future",
        "Say what you changed and why",
    ):
        assert message in response.text
    assert 'class="govuk-error-summary"' in response.text
    assert 'href="#title"' in response.text


def test_a_new_article_for_a_country(
    browser: Browser,
    editor: Account,
    lost_passport: int,
    session_factory: sessionmaker[Session],
) -> None:
    staff = browser(editor)
    page = staff.get("/admin/articles/new?topic=lost-stolen-passport&examples=lost+in+Lisbon")
    assert "lost in Lisbon" in page.text
    bad = staff.post(
        "/admin/articles/new",
        data={
            **fields(),
            "topic": "lost-stolen-passport",
            "country": "QQ",
            "csrf_token": token(staff),
        },
    )
    assert bad.status_code == 400
    assert "Enter a 2-letter country code" in bad.text
    duplicate = staff.post(
        "/admin/articles/new",
        data={
            **fields(),
            "topic": "lost-stolen-passport",
            "country": "",
            "csrf_token": token(staff),
        },
    )
    assert duplicate.status_code == 400
    assert "There is already an article on this topic for all countries" in duplicate.text
    created = staff.post(
        "/admin/articles/new",
        data={
            **fields(),
            "topic": "lost-stolen-passport",
            "country": "pt",
            "csrf_token": token(staff),
        },
        follow_redirects=False,
    )
    assert created.status_code == 303
    with session_factory() as session:
        article = session.scalars(
            select(GuidanceArticle).where(GuidanceArticle.country == "PT")
        ).one()
        assert [r.status for r in article.revisions] == [RevisionStatus.DRAFT]
    assert "Portugal (PT)" in staff.get(created.headers["location"]).text


def test_the_preview_button_works_without_javascript(
    browser: Browser, editor: Account, lost_passport: int
) -> None:
    staff = browser(editor)
    edit_path = open_draft(staff, lost_passport)
    shown = save(
        staff, edit_path, body="**Go** to [the police](https://police.example)", action="preview"
    )
    assert shown.status_code == 200
    assert "<strong>Go</strong>" in shown.text
    assert "Go to the police (https://police.example)" in shown.text
    assert "It has not been saved" in shown.text


def test_the_live_preview_endpoint_fills_the_country(browser: Browser, editor: Account) -> None:
    staff = browser(editor)
    shown = staff.post(
        "/admin/articles/preview",
        data={"csrf_token": token(staff), "body": "Police in {country_name}.", "country": "es"},
    ).json()
    assert shown == {"html": "<p>Police in Spain.</p>", "plain": "Police in Spain."}


# -- history, diff, rollback ---------------------------------------------------------------


def test_history_and_a_diff_between_two_revisions(
    browser: Browser, editor: Account, lost_passport: int, session_factory: sessionmaker[Session]
) -> None:
    staff = browser(editor)
    edit_path = open_draft(staff, lost_passport)
    save(staff, edit_path, body=LOST_PASSPORT + "\nBring a photo.", title="Lost passport")
    first, second = revision_ids(session_factory, lost_passport)
    page = staff.get(f"/admin/articles/{lost_passport}?from={first}&to={second}")
    assert "Revision 1 to revision 2" in page.text
    assert '<span class="govuk-visually-hidden">Added: </span>Bring a photo.' in page.text
    assert (
        '<span class="govuk-visually-hidden">Removed: </span>Lost or stolen passport abroad'
        in page.text
    )
    assert "Shorter first step" in page.text  # the change note in the history
    wrong = staff.get(f"/admin/articles/{lost_passport}?from={first}&to=999999")
    assert "Choose two revisions of this article" in wrong.text


def test_rolling_back_publishes_the_earlier_approved_text(
    browser: Browser,
    editor: Account,
    reviewer: Account,
    client: TestClient,
    lost_passport: int,
    session_factory: sessionmaker[Session],
) -> None:
    writer = browser(editor)
    save(writer, open_draft(writer, lost_passport), body="Version two.", action="submit")
    second = revision_ids(session_factory, lost_passport)[-1]
    checker = browser(reviewer)
    approved = checker.post(
        f"/admin/review/{second}/approve", data={"csrf_token": token(checker, "/admin/review")}
    )
    assert approved.status_code == 200
    assert served(client) == "Version two."
    first = revision_ids(session_factory, lost_passport)[0]
    rolled = writer.post(
        f"/admin/articles/{lost_passport}/rollback",
        data={"csrf_token": token(writer), "revision_id": str(first)},
        follow_redirects=False,
    )
    assert rolled.headers["location"] == f"/admin/articles/{lost_passport}?done=rolled-back"
    assert served(client).startswith("Report it to the police")
    page = writer.get(rolled.headers["location"])
    assert "restores 1" in page.text


def test_a_rollback_to_another_articles_revision_is_refused(
    browser: Browser, editor: Account, lost_passport: int
) -> None:
    staff = browser(editor)
    response = staff.post(
        f"/admin/articles/{lost_passport}/rollback",
        data={"csrf_token": token(staff), "revision_id": "424242"},
    )
    assert response.status_code == 404
    assert "There is no such revision of this article" in response.text


def test_discarding_a_draft(
    browser: Browser, editor: Account, lost_passport: int, session_factory: sessionmaker[Session]
) -> None:
    staff = browser(editor)
    edit_path = open_draft(staff, lost_passport)
    draft_id = revision_ids(session_factory, lost_passport)[-1]
    response = staff.post(
        f"/admin/articles/{lost_passport}/revisions/{draft_id}/discard",
        data={"csrf_token": token(staff)},
        follow_redirects=False,
    )
    assert response.headers["location"].endswith("?done=discarded")
    assert staff.get(edit_path, follow_redirects=False).status_code == 303
