"""A fast version of the benchmark's accuracy check, on the trained model's NLU.

The full benchmark (make bench) goes through the whole stack; this parses
the 90 travel queries and 300 of the out-of-scope queries directly, so that a
regression in training data or pipeline fails make test. It also parses the
urgent probes (tests/rasa/urgent_probes.yml: emergencies and look-alikes
written for this check, never trained on): every emergency must get an
urgent topic, and the urgent safety net must not fire on a look-alike.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.nlu_predict import predict  # noqa: E402

EVAL = ROOT.parent / "shared" / "eval" / "clinc_travel_oos.jsonl"
MODEL = ROOT / "models" / "consular.tar.gz"
PROBES = Path(__file__).with_name("urgent_probes.yml")
OUT_OF_SCOPE_SAMPLE = 300
# Below the benchmark's targets, so that noise passes and a regression does not.
MIN_TOPIC_ACCURACY = 0.90
MIN_COUNTRY_ACCURACY = 0.95
MIN_REJECTION = 0.88
# SERVICE_CATALOGUE.md, "Urgent handling": an emergency is never missed.
MIN_URGENT_PROBE_RECALL = 1.0
URGENT = {
    "arrest_detention",
    "death_abroad",
    "hospital_abroad",
    "crime_victim",
    "sexual_assault",
    "missing_person",
    "kidnap",
    "forced_marriage",
    "child_abduction",
    "crisis_disaster",
    "wellbeing_crisis",
}
NO_GUIDANCE = {
    "out_of_scope",
    "nlu_fallback",
    "greet",
    "goodbye",
    "thanks",
    "bot_challenge",
    "affirm",
    "deny",
    "inform_country",
    "inform_person",
}

needs_eval = pytest.mark.skipif(
    not EVAL.exists(), reason="shared/eval is not beside the repository"
)
pytestmark = pytest.mark.skipif(not MODEL.exists(), reason="no trained model: run make test")


@pytest.fixture(scope="module")
def probes() -> tuple[list[dict], list[dict]]:
    document = yaml.safe_load(PROBES.read_text())
    urgent, not_urgent = document["urgent"], document["not_urgent"]
    results = predict(str(MODEL), urgent + not_urgent)
    return results[: len(urgent)], results[len(urgent) :]


@pytest.fixture(scope="module")
def scored() -> tuple[list[dict], list[dict]]:
    rows = [json.loads(line) for line in EVAL.read_text().splitlines()]
    travel = [row for row in rows if row["topic"] != "out-of-scope"]
    other = [row for row in rows if row["topic"] == "out-of-scope"][:OUT_OF_SCOPE_SAMPLE]
    sample = travel + other
    results = predict(str(MODEL), [row["text"] for row in sample])
    split = len(travel)
    return (
        list(zip(travel, results[:split], strict=True)),
        list(zip(other, results[split:], strict=True)),
    )


@needs_eval
def test_travel_topics(scored) -> None:
    travel, _ = scored
    right = sum(result["intent"] == row["topic"].replace("-", "_") for row, result in travel)
    assert right / len(travel) >= MIN_TOPIC_ACCURACY


@needs_eval
def test_countries(scored) -> None:
    travel, _ = scored
    named = [(row, result) for row, result in travel if row["country"]]
    right = 0
    for row, result in named:
        expected = row["country"] if isinstance(row["country"], list) else [row["country"]]
        right += bool(result["countries"]) and result["countries"][0] in expected
    assert right / len(named) >= MIN_COUNTRY_ACCURACY


@needs_eval
def test_out_of_scope_rejected(scored) -> None:
    _, other = scored
    rejected = sum(result["intent"] in NO_GUIDANCE for _, result in other)
    assert rejected / len(other) >= MIN_REJECTION


def test_every_urgent_probe_gets_an_urgent_topic(probes) -> None:
    urgent, _ = probes
    missed = [result["text"] for result in urgent if result["intent"] not in URGENT]
    assert 1 - len(missed) / len(urgent) >= MIN_URGENT_PROBE_RECALL, missed


def test_the_safety_net_does_not_fire_on_look_alikes(probes) -> None:
    _, not_urgent = probes
    assert [r["text"] for r in not_urgent if r["urgent_override"]] == []
