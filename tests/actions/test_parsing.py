"""Property tests for what citizens type: dates of birth and case references."""

from __future__ import annotations

from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from actions.parsing import parse_birth_date, parse_reference

TODAY = date(2026, 11, 23)
birth_dates = st.dates(min_value=date(1900, 1, 1), max_value=TODAY)
FORMATS = [
    lambda d: d.strftime("%d/%m/%Y"),
    lambda d: d.strftime("%d-%m-%Y"),
    lambda d: d.strftime("%d.%m.%Y"),
    lambda d: d.isoformat(),
    lambda d: f"{d.day} {d:%B %Y}",
    lambda d: f"{d.day} {d:%b %Y}",
    lambda d: f"{d:%B} {d.day}, {d.year}",
    lambda d: f"{d.day} {d:%B %Y}".lower(),
    lambda d: f"born on {d.day} {d:%B %Y}",
]


@settings(max_examples=300)
@given(birth_dates, st.sampled_from(FORMATS))
def test_common_formats_read_back_the_same_date(born: date, fmt) -> None:
    assert parse_birth_date(fmt(born), today=TODAY) == born


@settings(max_examples=300)
@given(st.text(max_size=80))
def test_any_text_gives_a_plausible_date_or_none(text: str) -> None:
    parsed = parse_birth_date(text, today=TODAY)
    assert parsed is None or date(1900, 1, 1) <= parsed <= TODAY


@given(st.dates(min_value=date(TODAY.year + 1, 1, 1)))
def test_future_dates_are_refused(when: date) -> None:
    assert parse_birth_date(when.strftime("%d/%m/%Y"), today=TODAY) is None


@given(st.integers(2000, 2099), st.integers(0, 999_999), st.sampled_from(["-", " ", "", "/"]))
def test_references_normalise(year: int, number: int, sep: str) -> None:
    typed = f"con{sep}{year}{sep}{number:06d}"
    assert parse_reference(f"my case is {typed} thanks") == f"CON-{year}-{number:06d}"


@given(st.text(alphabet=st.characters(blacklist_characters="Cc"), max_size=40))
def test_text_without_con_is_not_a_reference(text: str) -> None:
    assert parse_reference(text) is None
