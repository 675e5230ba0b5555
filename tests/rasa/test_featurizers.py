"""components.featurizers: Rasa's count vectors for whole messages, without per-token rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer import (
    CountVectorsFeaturizer,
)
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from rasa.shared.nlu.constants import INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from components.featurizers import SentenceCountVectorsFeaturizer

EXAMPLES = [
    ("my passport was stolen in lisbon", "lost_stolen_passport"),
    ("I lost my pasport on the beach", "lost_stolen_passport"),
    ("my son has been arrested in dubai", "arrest_detention"),
    ("police took my husband away", "arrest_detention"),
    ("how do I contact the embassy in spain", "contact_embassy"),
    ("phone number for the british consulate", "contact_embassy"),
]
UNSEEN = ["someone stole my passprt", "the consulate in thailand", "", "zzz qqq"]


def tokenised(texts: list[tuple[str, str]]) -> list[Message]:
    tokenizer = WhitespaceTokenizer(WhitespaceTokenizer.get_default_config())
    messages = [Message(data={TEXT: text, INTENT: intent}) for text, intent in texts]
    tokenizer.process_training_data(TrainingData(training_examples=messages))
    return messages


def trained(kind: Any, config: dict[str, Any], tmp_path: Path, name: str) -> Any:
    featurizer = kind.create(
        {**kind.get_default_config(), **config},
        LocalModelStorage(tmp_path),
        Resource(name),
        ExecutionContext(GraphSchema({}), name),
    )
    featurizer.train(TrainingData(training_examples=tokenised(EXAMPLES)))
    return featurizer


@pytest.mark.parametrize(
    "config",
    [{}, {"analyzer": "char_wb", "min_ngram": 2, "max_ngram": 4}],
    ids=["words", "character n-grams"],
)
def test_the_same_sentence_rows_and_no_token_rows(config: dict[str, Any], tmp_path: Path) -> None:
    stock = trained(CountVectorsFeaturizer, config, tmp_path, "stock")
    ours = trained(SentenceCountVectorsFeaturizer, config, tmp_path, "ours")
    assert ours.vectorizers[TEXT].vocabulary_ == stock.vectorizers[TEXT].vocabulary_

    for training in (False, True):
        texts = EXAMPLES if training else [(text, "") for text in UNSEEN]
        expected, got = tokenised(texts), tokenised(texts)
        if training:
            stock.process_training_data(TrainingData(training_examples=expected))
            ours.process_training_data(TrainingData(training_examples=got))
        else:
            stock.process(expected)
            ours.process(got)
        for before, after in zip(expected, got, strict=True):
            sequence, sentence = before.get_sparse_features(TEXT)
            no_sequence, same_sentence = after.get_sparse_features(TEXT)
            assert no_sequence is None
            if sentence is None:  # an empty message has no features at all
                assert same_sentence is None and before.get(TEXT) == ""
                continue
            assert sequence is not None  # stock made token rows; ours did not
            assert same_sentence is not None
            assert np.array_equal(sentence.features.toarray(), same_sentence.features.toarray())
