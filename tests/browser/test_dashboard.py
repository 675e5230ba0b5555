"""The supervisors' dashboard in a real browser: filter by country, see the chart, get the CSV.

A supervisor signs in through the staff sign-in (password, then a TOTP code
computed by pyotp), opens the dashboard over the hand-made history of
tests/app/insight/conftest.py, filters it to Australia and downloads a
table as CSV. Chart.js draws from the tables under the page's strict
Content-Security-Policy; axe-core checks the page.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.app.insight.conftest import build_history
from tests.browser.conftest import StaffLogin, add_staff, staff_context
from tests.browser.stack import Stack
from tests.browser.test_admin import sign_in
from tests.browser.test_webchat import axe_violations


@pytest.fixture
def history(stack: Stack) -> Stack:
    build_history(stack.session_factory)
    return stack


@pytest.fixture
def supervisor(history: Stack) -> StaffLogin:
    return add_staff(history, email="sue@example.gov.uk", name="Sue Supervisor", role="supervisor")


@pytest.fixture
def supervisor_page(browser: Browser) -> Iterator[Page]:
    for context in staff_context(browser):
        yield context.new_page()


def test_filter_by_country_and_download_a_csv(
    history: Stack, supervisor: StaffLogin, supervisor_page: Page
) -> None:
    page = supervisor_page
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    sign_in(page, history, supervisor, "/admin/dashboard")
    expect(page.get_by_role("heading", level=1)).to_have_text("Demand")

    page.get_by_label("From", exact=True).fill("2026-03-25")
    page.get_by_label("To", exact=True).fill("2026-04-07")
    page.get_by_label("Country", exact=True).select_option("AU")
    page.get_by_role("button", name="Show figures").click()
    expect(page).to_have_url(
        history.url + "/admin/dashboard?from=2026-03-25&to=2026-04-07&country=AU&topic=&channel="
    )

    posts = page.locator("#table-by-post")
    expect(posts.locator("tbody tr")).to_have_count(1)
    expect(posts.locator("tbody tr").first).to_contain_text("British High Commission Canberra")
    expect(page.locator(".dashboard-card__value").first).to_have_text("6")
    # The script drew the chart from the table, and folded the table under its summary.
    chart = page.locator('[data-table="table-by-post"]')
    expect(chart).to_be_visible()
    expect(chart.locator("canvas")).to_have_attribute("role", "img")
    assert page.evaluate(
        "() => window.Chart.getChart(document.querySelector("
        "'[data-table=\"table-by-post\"] canvas')).data.datasets[0].data"
    ) == [6]
    page.get_by_text("Table: Conversations by post").click()
    expect(posts).to_be_visible()

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download “Conversations by post” as CSV").click()
    download = download_info.value
    assert download.suggested_filename == "consular-by-post-2026-03-25-to-2026-04-07.csv"
    with open(download.path(), encoding="utf-8") as file:
        table = list(csv.reader(io.StringIO(file.read())))
    assert table[1][:4] == ["British High Commission Canberra", "6", "0", "18"]
    assert errors == []
    assert axe_violations(page) == []
