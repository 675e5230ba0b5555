"""The Rasa component: one country per message, the destination, and masked tokens."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

spacy = pytest.importorskip("spacy")

from rasa.nlu.constants import SPACY_DOCS, TOKENS_NAMES  # noqa: E402
from rasa.nlu.tokenizers.spacy_tokenizer import SpacyTokenizer  # noqa: E402
from rasa.shared.nlu.constants import ENTITIES, TEXT  # noqa: E402
from rasa.shared.nlu.training_data.message import Message  # noqa: E402

from components.country_extractor import PLACEHOLDER, CountryEntityExtractor  # noqa: E402

PIPELINE = Path(os.environ.get("SPACY_PIPELINE", "build/spacy/en_consular"))
pytestmark = pytest.mark.skipif(not PIPELINE.exists(), reason=f"{PIPELINE} not built")


@pytest.fixture(scope="module")
def nlp():
    return spacy.load(PIPELINE)


def run(nlp, text: str) -> Message:
    message = Message(data={TEXT: text})
    message.set(SPACY_DOCS[TEXT], nlp(text))
    tokenizer = SpacyTokenizer(SpacyTokenizer.get_default_config())
    tokenizer.process([message])
    CountryEntityExtractor().process([message])
    return message


@pytest.mark.parametrize(
    ("text", "country"),
    [
        ("how do I contact the British embassy in Spain", "ES"),
        ("do americans need visas in canada", "CA"),
        ("im from spain going to france next week", "FR"),
        ("flying from dubai to bangkok tomorrow", "TH"),
        ("thai food in london", "TH"),
        ("my son was arrested in DUBAI", "AE"),
    ],
)
def test_one_country_the_destination(nlp, text: str, country: str) -> None:
    entities = [e for e in run(nlp, text).get(ENTITIES, []) if e["entity"] == "country"]
    assert [e["value"] for e in entities] == [country]


def test_country_tokens_are_masked_for_the_classifier(nlp) -> None:
    tokens = [
        t.text for t in run(nlp, "embassy in united arab emirates please").get(TOKENS_NAMES[TEXT])
    ]
    assert tokens == ["embassy", "in", PLACEHOLDER, "please"]


def test_message_without_a_country_is_untouched(nlp) -> None:
    message = run(nlp, "can you help us please")
    assert message.get(ENTITIES, []) == []
    assert PLACEHOLDER not in [t.text for t in message.get(TOKENS_NAMES[TEXT])]
