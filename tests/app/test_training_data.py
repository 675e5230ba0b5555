"""Training data rules: held-out queries never trained on; enough examples per topic."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from bot.catalogue import TOPICS

ROOT = Path(__file__).resolve().parents[2]
EVAL = ROOT.parent / "shared" / "eval"
HELD_OUT_SPLITS = ("val", "oos_val", "test", "oos_test")
CONFUSABLE = {
    "lost_stolen_passport",
    "passport_renewal_abroad",
    "crime_victim",
    "sexual_assault",
    "arrest_detention",
    "what_we_cannot_do",
}
_ANNOTATION = re.compile(r"\[([^\]]*)\](?:\([^)]*\)|\{[^}]*\})")

needs_eval = pytest.mark.skipif(
    not (EVAL / "clinc150" / "data_full.json").exists(),
    reason="shared/eval is not beside the repository",
)


def _normal(text: str) -> str:
    return " ".join(_ANNOTATION.sub(r"\1", text).strip().strip("\"'").lower().split())


def _examples() -> dict[str, list[str]]:
    by_intent: dict[str, list[str]] = {}
    for path in (ROOT / "data" / "nlu").glob("*.yml"):
        for block in yaml.safe_load(path.read_text())["nlu"]:
            if "intent" in block:
                lines = [
                    line[2:] for line in block["examples"].splitlines() if line.startswith("- ")
                ]
                by_intent.setdefault(block["intent"], []).extend(lines)
    return by_intent


def _all_training_lines() -> set[str]:
    lines = set()
    for folder in ("data", "tests/conversations"):
        for path in (ROOT / folder).rglob("*.yml"):
            for line in path.read_text().splitlines():
                text = re.sub(r"^\s*(-\s+|user:\s*\|?)", "", line)
                if text:
                    lines.add(_normal(text))
    return lines


def _held_out_queries() -> set[str]:
    clinc = json.loads((EVAL / "clinc150" / "data_full.json").read_text())
    queries = {_normal(text) for split in HELD_OUT_SPLITS for text, _ in clinc[split]}
    for line in (EVAL / "clinc_travel_oos.jsonl").read_text().splitlines():
        queries.add(_normal(json.loads(line)["text"]))
    return queries


@needs_eval
def test_no_held_out_query_is_in_training_data_or_stories() -> None:
    leaked = _all_training_lines() & _held_out_queries()
    assert leaked == set(), f"held-out queries in data/: {sorted(leaked)[:10]}"


@needs_eval
def test_generated_clinc_negatives_are_up_to_date() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "clinc_negatives", ROOT / "scripts/clinc_negatives.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    clinc = json.loads((EVAL / "clinc150" / "data_full.json").read_text())
    output = module.OUTPUT
    texts = module.negatives(clinc, 10, module.existing_examples(output.parent, output))
    assert output.read_text() == module.render(texts, 10), "run scripts/clinc_negatives.py"


@pytest.mark.parametrize("topic", [t for t in TOPICS if t.slug != "out-of-scope"], ids=str)
def test_every_topic_has_enough_varied_examples(topic) -> None:
    examples = _examples().get(topic.intent, [])
    minimum = 80 if topic.intent in CONFUSABLE else 40
    assert len(examples) >= minimum
    assert len({_normal(e) for e in examples}) == len(examples), "duplicate examples"


def test_no_example_is_under_two_intents() -> None:
    owner: dict[str, str] = {}
    clashes = []
    for intent, examples in _examples().items():
        for example in examples:
            key = _normal(example)
            if owner.setdefault(key, intent) != intent:
                clashes.append((example, owner[key], intent))
    assert clashes == []
