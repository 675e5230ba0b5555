"""Guidance Markdown as channels show it; nothing executable survives."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from bot.guidance.render import fill, to_html, to_plain

ARTICLE = """Report the theft to the police in {country_name}.

- Apply for an [emergency travel document](https://www.gov.uk/emergency-travel-document).
- Keep the **police report**."""


def test_plain_text_writes_links_out_and_keeps_lists() -> None:
    text = to_plain(fill(ARTICLE, country_name="Spain"))
    assert text == (
        "Report the theft to the police in Spain.\n\n"
        "- Apply for an emergency travel document "
        "(https://www.gov.uk/emergency-travel-document).\n"
        "- Keep the police report."
    )


def test_html_has_the_link_and_list() -> None:
    html = to_html(ARTICLE)
    assert '<a href="https://www.gov.uk/emergency-travel-document"' in html
    assert "<ul>" in html and "<strong>police report</strong>" in html


@pytest.mark.parametrize(
    "hostile",
    [
        "<script>alert(1)</script>",
        '<img src=x onerror="alert(1)">',
        "[click](javascript:alert(1))",
        '<a href="javascript:alert(1)">x</a>',
        "<iframe src=//evil></iframe>",
        '<p onclick="alert(1)">hi</p>',
    ],
)
def test_no_script_survives_html_rendering(hostile: str) -> None:
    elements = _elements(to_html(f"Hello {hostile} there"))
    assert {tag for tag, _ in elements} <= {"p", "a"}
    for _, attributes in elements:
        assert not any(name.startswith("on") for name in attributes)
        assert not attributes.get("href", "").lower().startswith("javascript")


def _elements(html: str) -> list[tuple[str, dict[str, str]]]:
    found: list[tuple[str, dict[str, str]]] = []

    class Collector(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            found.append((tag, {name: value or "" for name, value in attrs}))

    Collector().feed(html)
    return found


def test_the_same_answer_is_rendered_once_and_an_edit_is_rendered_afresh() -> None:
    to_html.cache_clear()
    to_plain.cache_clear()
    body = "Call **+44 20 7008 5000**. <script>alert(1)</script> [form](https://www.gov.uk/x)"
    first = [to_html(body), to_plain(body)]
    again = [to_html(body), to_plain(body)]
    assert again == first
    assert to_html.cache_info().hits == 1 and to_plain.cache_info().hits == 1
    assert "<script>" not in first[0] and "<strong>" in first[0]
    edited = body.replace("7008 5000", "7008 1500")
    assert "7008 1500" in to_html(edited) and "7008 1500" in to_plain(edited)
    assert to_html.cache_info().misses == 2
