"""Markdown guidance rendered per channel: sanitised HTML for web chat, plain text elsewhere.

Article bodies are written by admins, so rendering never trusts them: raw
HTML in the Markdown is not rendered, and the HTML output is sanitised again
with an allow-list before it reaches a citizen or an officer.
"""

from __future__ import annotations

import re
from functools import lru_cache

import nh3
from markdown_it import MarkdownIt
from markdown_it.token import Token

ALLOWED_TAGS = {"p", "a", "ul", "ol", "li", "strong", "em", "br", "code"}
ALLOWED_ATTRIBUTES = {"a": {"href"}}
ALLOWED_URL_SCHEMES = {"https", "http", "mailto", "tel"}
PLACEHOLDER = re.compile(r"\{country_name\}")


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    # "js-default" disables raw HTML and unsafe link schemes.
    return MarkdownIt("js-default").disable(["image", "table"])


def fill(body: str, *, country_name: str | None) -> str:
    """Fills the one placeholder articles may use; a generic answer says "the country"."""
    return PLACEHOLDER.sub(country_name or "the country", body)


# The renderers are pure functions of the text, and the same few published
# answers are rendered again for every citizen who asks (and for every
# transcript that shows them), so recent results are kept.
RENDER_CACHE_SIZE = 512


@lru_cache(maxsize=RENDER_CACHE_SIZE)
def to_html(markdown: str) -> str:
    """Sanitised HTML for web chat: an allow-list of tags, links with safe schemes only."""
    html = _markdown().render(markdown)
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=ALLOWED_URL_SCHEMES,
        link_rel="noopener noreferrer",
    ).strip()


@lru_cache(maxsize=RENDER_CACHE_SIZE)
def to_plain(markdown: str) -> str:
    """Plain text with links written out, for WhatsApp, Telegram and SMS."""
    lines: list[str] = []
    list_depth = 0
    for block in _markdown().parse(markdown):
        if block.type in {"bullet_list_open", "ordered_list_open"}:
            list_depth += 1
        elif block.type in {"bullet_list_close", "ordered_list_close"}:
            list_depth -= 1
            lines.append("")
        elif block.type == "inline":
            text = _inline_plain(block.children or [])
            lines.append(f"- {text}" if list_depth else text)
        elif block.type == "paragraph_close" and not list_depth:
            lines.append("")
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _inline_plain(tokens: list[Token]) -> str:
    parts: list[str] = []
    href: str | None = None
    link_text: list[str] = []
    for token in tokens:
        if token.type == "link_open":
            href = str(token.attrs.get("href", ""))
            link_text = []
        elif token.type == "link_close":
            label = "".join(link_text)
            parts.append(label if not href or label == href else f"{label} ({href})")
            href = None
        elif token.type in {"text", "code_inline"}:
            (link_text if href is not None else parts).append(token.content)
        elif token.type in {"softbreak", "hardbreak"}:
            parts.append(" " if token.type == "softbreak" else "\n")
    return "".join(parts).strip()
