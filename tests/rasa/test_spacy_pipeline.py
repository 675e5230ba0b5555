"""The spaCy pipeline built from the gazetteer: country mentions come back with ISO codes.

Runs in the Rasa environment:

    .venv-rasa/bin/python -m pytest tests/rasa/test_spacy_pipeline.py -q

The gazetteer is produced by the app environment (``python -m bot.geo.gazetteer``),
which this environment cannot import, so the test reads an existing file: the
path in ``GAZETTEER_JSONL``, or ``build/gazetteer.jsonl``. A relative path is
taken from the repository root. Without the file the tests are skipped.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "scripts" / "build_spacy_pipeline.py"


def _gazetteer_path() -> Path:
    path = Path(os.environ.get("GAZETTEER_JSONL", "build/gazetteer.jsonl"))
    return path if path.is_absolute() else REPO_ROOT / path


def _load_builder() -> ModuleType:
    # scripts/ is not a package; load the file under a private module name.
    spec = importlib.util.spec_from_file_location("_build_spacy_pipeline", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def builder() -> ModuleType:
    return _load_builder()


@pytest.fixture(scope="module")
def pipeline_dir(builder: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Path:
    gazetteer = _gazetteer_path()
    if not gazetteer.exists():
        pytest.skip(
            f"no gazetteer at {gazetteer}: run `.venv/bin/python -m bot.geo.gazetteer "
            f"{gazetteer}` first, or point GAZETTEER_JSONL at one"
        )
    out = tmp_path_factory.mktemp("spacy") / "en_consular"
    builder.build_pipeline(gazetteer, out)
    return out


@pytest.fixture(scope="module")
def nlp(pipeline_dir: Path) -> Any:
    import spacy

    # The same call Rasa's SpacyNLP makes.
    return spacy.load(pipeline_dir, disable=["parser"])


def countries(nlp: Any, text: str) -> list[tuple[str, str]]:
    return [(ent.text, ent.ent_id_) for ent in nlp(text).ents if ent.label_ == "COUNTRY"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("how do I contact the British embassy in Spain", [("Spain", "ES")]),
        ("my son has been arrested in dubai", [("dubai", "AE")]),
        ("lost my passport in the states", [("the states", "US")]),
        ("travel advice for columbia", [("columbia", "CO")]),
        ("NEW YORK consulate", [("NEW YORK", "US")]),
        ("i am in bangkok and need help", [("bangkok", "TH")]),
        ("nice weather in spain", [("spain", "ES")]),
        ("can you help us", []),
        ("I'm in the U.S. on holiday", [("U.S.", "US")]),
        ("i'm in the u.s. on holiday", [("u.s.", "US")]),
        ("we are staying in Côte d'Ivoire", [("Côte d'Ivoire", "CI")]),
        ("we are staying in cote d’ivoire", [("cote d’ivoire", "CI")]),
        (
            "flying from St. Lucia to Trinidad & Tobago",
            [("St. Lucia", "LC"), ("Trinidad & Tobago", "TT")],
        ),
        ("my Spanish wife is in Tenerife", [("Spanish", "ES"), ("Tenerife", "ES")]),
        ("we live in northern ireland", [("northern ireland", "GB")]),
        ("backpacking around south america", []),
        ("my american express card was stolen in magaluf", [("magaluf", "ES")]),
        ("visiting family in new south wales", [("new south wales", "AU")]),
        ("I'm in London", []),
    ],
)
def test_sentences(nlp: Any, text: str, expected: list[tuple[str, str]]) -> None:
    assert countries(nlp, text) == expected


def test_lowercased_text_as_rasa_sends_it(nlp: Any) -> None:
    # SpacyNLP with case_sensitive: false lower-cases before calling spaCy.
    text = "My daughter is in HONG KONG, then the UAE and Gibraltar".lower()
    assert [code for _, code in countries(nlp, text)] == ["HK", "AE", "GI"]


def test_every_country_entity_carries_an_iso_code(nlp: Any) -> None:
    doc = nlp("from the cayman islands via puerto rico to the usa and then ibiza")
    ents = [ent for ent in doc.ents if ent.label_ == "COUNTRY"]
    assert [ent.ent_id_ for ent in ents] == ["KY", "PR", "US", "ES"]


def test_pipeline_metadata(pipeline_dir: Path, nlp: Any) -> None:
    import spacy

    assert nlp.pipe_names == ["entity_ruler"]
    assert nlp.meta["name"] == "en_consular"
    assert "gazetteer" in nlp.meta["description"]
    info = spacy.info(str(pipeline_dir))
    assert isinstance(info, dict)
    # Rasa refuses a pipeline whose declared spaCy range excludes the runtime.
    assert spacy.util.is_compatible_version(spacy.about.__version__, info["spacy_version"])


def test_rebuild_replaces_pipeline_without_leftovers(
    builder: ModuleType, pipeline_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "en_consular"
    for _ in range(2):
        builder.build_pipeline(_gazetteer_path(), out)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["en_consular"]
    assert (out / "meta.json").exists()


def test_failed_build_leaves_target_untouched(builder: ModuleType, tmp_path: Path) -> None:
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"phrase": "spain", "iso2": "spain"}\n', encoding="utf-8")
    out = tmp_path / "en_consular"
    out.mkdir()
    (out / "marker").write_text("old pipeline", encoding="utf-8")
    with pytest.raises(ValueError):
        builder.build_pipeline(broken, out)
    assert (out / "marker").read_text(encoding="utf-8") == "old pipeline"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["broken.jsonl", "en_consular"]
