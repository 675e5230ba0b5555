"""The dashboard's pages and CSV files: who may see them, what they show, what they never show."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from bot.admin import dashboard
from bot.insight.queries import HIDDEN, Column, Figure
from bot.insight.suppression import SUPPRESSED
from tests.app.console.conftest import Account
from tests.app.insight.conftest import build_history

RANGE_QUERY = "from=2026-03-25&to=2026-04-07"
Browser = Callable[[Account], TestClient]


@pytest.fixture
def app_client(client: TestClient) -> TestClient:
    """The app's client (the dashboard's routes are part of the app)."""
    return client


@pytest.fixture
def history(app_client: TestClient, session_factory: sessionmaker[Session]) -> Iterator[None]:
    build_history(session_factory)
    yield


def test_signed_out_staff_are_sent_to_sign_in(app_client: TestClient) -> None:
    response = app_client.get("/admin/dashboard", follow_redirects=False)
    assert response.status_code == 303
    assert "/console/sign-in?next=/admin/dashboard" in response.headers["location"]
    csv_response = app_client.get("/admin/dashboard/csv/by-topic", follow_redirects=False)
    assert csv_response.status_code == 303


@pytest.mark.parametrize("role", ["officer", "editor"])
def test_only_supervisors_and_admins_may_open_it(
    app_client: TestClient, browser: Browser, role: str, request: pytest.FixtureRequest
) -> None:
    client = browser(request.getfixturevalue(role))
    for path in ("/admin/dashboard", "/admin/dashboard/service", "/admin/dashboard/csv/by-topic"):
        assert client.get(path).status_code == 403, path


@pytest.mark.parametrize("role", ["supervisor", "admin"])
def test_supervisors_and_admins_see_every_page(
    app_client: TestClient, browser: Browser, role: str, request: pytest.FixtureRequest
) -> None:
    client = browser(request.getfixturevalue(role))
    for path in ("/admin/dashboard", "/admin/dashboard/service", "/admin/dashboard/content"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert "script-src 'self'" in response.headers["content-security-policy"]
        assert response.headers["cache-control"] == "no-store"


def test_demand_page_shows_tables_charts_and_no_personal_data(
    history: None, browser: Browser, supervisor: Account
) -> None:
    page = browser(supervisor).get(f"/admin/dashboard?{RANGE_QUERY}").text
    assert '<table class="govuk-table dashboard-table" id="table-by-topic">' in page
    assert 'data-table="table-by-topic"' in page
    assert "British Embassy Madrid" in page
    assert SUPPRESSED in page
    # The headline: 21 conversations, 46 messages.
    assert re.search(r"Conversations</span>\s*<span class=\"dashboard-card__value\">21<", page)
    assert "private words" not in page
    assert "es-passport-0" not in page
    # No inline script: every script has a source on this origin.
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page)
    assert "/admin/dashboard/csv/by-topic?from=2026-03-25&amp;to=2026-04-07" in page


def test_country_filter(history: None, browser: Browser, supervisor: Account) -> None:
    page = browser(supervisor).get(f"/admin/dashboard?{RANGE_QUERY}&country=AU").text
    assert '<option value="AU" selected>' in page
    assert "British High Commission Canberra" in page
    assert "British Embassy Madrid" not in page
    assert "country=AU" in page  # the CSV links carry the filter


def test_wrong_filters_are_explained(history: None, browser: Browser, supervisor: Account) -> None:
    response = browser(supervisor).get(
        "/admin/dashboard?from=2026-02-30&to=2026-04-07&country=XX&channel=fax"
    )
    assert response.status_code == 400
    assert "There is a problem" in response.text
    assert "Enter the start date as a real date" in response.text
    assert "Choose a country from the list" in response.text
    assert "Choose a channel from the list" in response.text


def test_service_and_content_pages(history: None, browser: Browser, supervisor: Account) -> None:
    client = browser(supervisor)
    service = client.get(f"/admin/dashboard/service?{RANGE_QUERY}").text
    assert "Queue wait, median" in service
    assert "1 min 30 s" in service  # the 90 s median wait
    content = client.get(f"/admin/dashboard/content?{RANGE_QUERY}").text
    assert "Lost stolen passport" in content
    assert "a citizen&#39;s own words" not in content and "citizen's own words" not in content


def test_csv_download(history: None, browser: Browser, supervisor: Account) -> None:
    response = browser(supervisor).get(f"/admin/dashboard/csv/by-topic?{RANGE_QUERY}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"] == (
        'attachment; filename="consular-by-topic-2026-03-25-to-2026-04-07.csv"'
    )
    table = list(csv.reader(io.StringIO(response.text)))
    assert table[0] == [
        "Topic",
        "Conversations",
        "Urgent",
        "Messages",
        "Share of conversations (fraction)",
    ]
    assert table[1] == ["Travel advice", "8", "0", "22", f"{8 / 21:.4f}"]
    assert table[2] == ["Entry requirements", SUPPRESSED, "0", SUPPRESSED, SUPPRESSED]
    assert table[-1] == ["Total", "21", SUPPRESSED, "46", "1.0000"]


def test_csv_of_a_filtered_view_and_refusals(
    history: None, browser: Browser, supervisor: Account
) -> None:
    client = browser(supervisor)
    spain = client.get(f"/admin/dashboard/csv/over-time?{RANGE_QUERY}&country=ES&channel=webchat")
    rows = {row[0]: row[1:] for row in csv.reader(io.StringIO(spain.text))}
    assert rows["2026-03-27"] == ["5", "0", "10"]
    assert client.get("/admin/dashboard/csv/nonsense").status_code == 404
    assert client.get("/admin/dashboard/csv/by-topic?from=yesterday").status_code == 400


def test_csv_cells_never_run_as_formulas() -> None:
    figure = Figure(
        key="t",
        title="t",
        columns=(Column("label", "Label", "label"), Column("n", "Count")),
        rows=[['=HYPERLINK("http://x")', 7], ["+1", HIDDEN], ["@SUM(A1)", 0], ["-2", 5]],
    )
    table = list(csv.reader(io.StringIO(dashboard.figure_csv(figure))))
    assert [row[0] for row in table[1:]] == [
        '\'=HYPERLINK("http://x")',
        "'+1",
        "'@SUM(A1)",
        "'-2",
    ]
    assert table[2][1] == SUPPRESSED


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(45, "45 s"), (90, "1 min 30 s"), (3725, "1 h 02 min"), (90000, "1 d 1 h")],
)
def test_durations_read_at_a_glance(seconds: int, words: str) -> None:
    assert dashboard.duration(seconds) == words
