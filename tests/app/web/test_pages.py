"""The web chat demo page, its security headers and the static widget files."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from bot.web import pages

WIDGET_JS = pages.STATIC_DIR / "webchat" / "webchat.js"
WIDGET_CSS = pages.STATIC_DIR / "webchat" / "webchat.css"


def make_app() -> FastAPI:
    app = FastAPI()
    app.include_router(pages.router)
    pages.mount_static(app)
    return app


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(make_app()) as test_client:
        yield test_client


class _Collector(HTMLParser):
    """Collects start tags with their attributes, and inline script bodies."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.inline_scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts.append(data)


def parse(html: str) -> _Collector:
    collector = _Collector()
    collector.feed(html)
    return collector


def csp_directives(header: str) -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0]] = words[1:]
    return directives


def test_page_renders_with_the_widget_container(client: TestClient) -> None:
    response = client.get("/")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = parse(response.text)
    containers = [attrs for tag, attrs in page.tags if "data-consular-webchat" in attrs]
    assert len(containers) == 1
    assert containers[0]["data-api-base"] == ""
    assert containers[0]["data-max-length"] == "2000"
    assert "Consular assistance (sample service)" in response.text
    assert "+44 20 7008 5000" in response.text
    assert 'href="tel:+442070085000"' in response.text


def test_page_has_gov_uk_structure(client: TestClient) -> None:
    page = parse(client.get("/").text)
    classes = " ".join(attrs.get("class") or "" for _, attrs in page.tags)

    for expected in (
        "govuk-template",
        "govuk-skip-link",
        "govuk-header",
        "govuk-phase-banner",
        "govuk-main-wrapper",
        "govuk-footer",
    ):
        assert expected in classes
    html_tags = [attrs for tag, attrs in page.tags if tag == "html"]
    assert html_tags[0]["lang"] == "en"
    assert any(attrs.get("id") == "main-content" for _, attrs in page.tags)


def test_page_sets_a_strict_content_security_policy(client: TestClient) -> None:
    response = client.get("/")

    directives = csp_directives(response.headers["content-security-policy"])
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'"]
    assert directives["style-src"] == ["'self'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["connect-src"][0] == "'self'"
    assert set(directives["connect-src"][1:]) <= {"ws://testserver"}
    for sources in directives.values():
        for source in sources:
            assert source not in {"'unsafe-inline'", "'unsafe-eval'", "*", "data:", "https:"}
    assert response.headers["x-content-type-options"] == "nosniff"


def _request_for_host(host: str, scheme: str = "http") -> Request:
    return Request(
        {
            "type": "http",
            "method": "GET",
            "scheme": scheme,
            "path": "/",
            "root_path": "",
            "query_string": b"",
            "headers": [(b"host", host.encode("latin-1"))],
            "server": ("127.0.0.1", 8000),
        }
    )


def test_connect_src_allows_the_websocket_of_this_host() -> None:
    plain = csp_directives(pages.content_security_policy(_request_for_host("chat.example:8000")))
    secure = csp_directives(
        pages.content_security_policy(_request_for_host("chat.example", scheme="https"))
    )

    assert plain["connect-src"] == ["'self'", "ws://chat.example:8000"]
    assert secure["connect-src"] == ["'self'", "wss://chat.example"]


def test_connect_src_ignores_a_malformed_host() -> None:
    policy = pages.content_security_policy(_request_for_host("evil.example; script-src *"))

    # Depending on the Starlette version the bad Host header is either ignored
    # (falling back to the server address) or skipped by our own check.
    assert csp_directives(policy)["connect-src"] in (
        ["'self'"],
        ["'self'", "ws://127.0.0.1:8000"],
    )
    assert "evil" not in policy
    assert csp_directives(policy)["script-src"] == ["'self'"]


def test_page_has_no_inline_script_or_style(client: TestClient) -> None:
    page = parse(client.get("/").text)

    assert page.inline_scripts == []
    assert all("style" not in attrs for _, attrs in page.tags)
    assert all(not name.startswith("on") for _, attrs in page.tags for name in attrs)
    scripts = [attrs.get("src") or "" for tag, attrs in page.tags if tag == "script"]
    assert scripts and all(src.startswith("/static/") for src in scripts)


def test_page_links_only_local_assets(client: TestClient) -> None:
    page = parse(client.get("/").text)

    urls = [
        attrs.get("src") or attrs.get("href") or ""
        for tag, attrs in page.tags
        if tag in {"script", "link"}
    ]
    assert "/static/vendor/govuk/govuk-frontend.min.css" in {url.split("?")[0] for url in urls}
    assert all(url.startswith("/static/") for url in urls)


def test_widget_script_and_stylesheet_are_served(client: TestClient) -> None:
    js = client.get("/static/webchat/webchat.js")
    css = client.get("/static/webchat/webchat.css")

    assert js.status_code == 200
    assert "javascript" in js.headers["content-type"]
    assert "data-consular-webchat" in js.text
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")


def test_page_references_the_cache_busted_widget_files(client: TestClient) -> None:
    html = client.get("/").text

    assert re.search(r'src="/static/webchat/webchat\.js\?v=\d+"', html)
    assert re.search(r'href="/static/webchat/webchat\.css\?v=\d+"', html)


def test_widget_never_writes_html_from_strings() -> None:
    source = WIDGET_JS.read_text(encoding="utf-8")

    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in source, f"webchat.js must not use {sink}"
    assert "textContent" in source


def test_widget_uses_the_public_api_and_a_live_region() -> None:
    source = WIDGET_JS.read_text(encoding="utf-8")

    assert '"/api/webchat/sessions"' in source
    assert "?after=" in source
    assert "sessionStorage" in source
    assert '"aria-live": "polite"' in source
    assert 'role: "log"' in source
    assert '"aria-live": "assertive"' in source
    assert "client_message_id" in source
    assert "govuk-error-summary" in source


def test_widget_rebuilds_guidance_html_from_an_allow_list() -> None:
    source = WIDGET_JS.read_text(encoding="utf-8")

    # Parsed into an inert document, then copied element by element.
    assert source.count("parseFromString(") == 1
    assert "text/html" in source
    allowed = re.search(r"var RICH_TAGS = \{(.*?)\};", source, re.S)
    assert allowed is not None
    tags = set(re.findall(r'"([a-z]+)"', allowed.group(1)))
    assert tags == {"p", "ul", "ol", "li", "strong", "em", "code", "br", "a"}
    assert 'LINK_PROTOCOLS = ["https:", "http:", "mailto:", "tel:"]' in source


def test_phase_banner_sits_in_the_header_landmark(client: TestClient) -> None:
    html = client.get("/").text

    header = html[html.index("<header>") : html.index("</header>")]
    assert "govuk-phase-banner" in header
    assert "govuk-header" in header


def test_stylesheet_keeps_plain_text_line_breaks() -> None:
    assert "white-space: pre-line" in WIDGET_CSS.read_text(encoding="utf-8")


def test_page_uses_settings_from_the_app_when_present() -> None:
    class FakeSettings:
        emergency_phone = "+44 1234 567890"
        webchat_max_text_length = 500

    app = make_app()
    app.state.settings = FakeSettings()
    with TestClient(app) as test_client:
        html = test_client.get("/").text

    assert "+44 1234 567890" in html
    assert 'data-max-length="500"' in html
    assert "tel:+441234567890" in html
