"""Count-vector features of whole messages only, for a pipeline whose classifiers read no more.

Rasa's ``CountVectorsFeaturizer`` makes two kinds of features for every
message: a row per token (sequence features, read by DIET, TED and the
response selector) and one row for the whole message (sentence features).
The intent classifier here, a logistic regression, reads only the sentence
row (``components/serve.py``, ``sentence_rows``), and nothing else in the
pipeline reads count vectors at all. Profiled under load, building the
per-token rows took about 5% of the Rasa server's CPU time, for nothing.

``SentenceCountVectorsFeaturizer`` is the same featurizer, trained the same
way (same vocabulary, same sentence rows), without the per-token rows. A
pipeline that adds a component reading sequence features must go back to
Rasa's ``CountVectorsFeaturizer``: that component would fail to train for
lack of them, so the mistake cannot pass unnoticed.
"""

from __future__ import annotations

from typing import List, Optional, Text, Tuple

import scipy.sparse
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.constants import DENSE_FEATURIZABLE_ATTRIBUTES
from rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer import (
    CountVectorsFeaturizer,
)

Rows = List[Optional[scipy.sparse.spmatrix]]


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER,
    is_trainable=True,
)
class SentenceCountVectorsFeaturizer(CountVectorsFeaturizer):
    """``CountVectorsFeaturizer`` that gives each message its sentence row and no token rows."""

    def _create_features(self, attribute: Text, all_tokens: List[List[Text]]) -> Tuple[Rows, Rows]:
        vectorizer = self.vectorizers.get(attribute)
        if not vectorizer:
            return [None], [None]
        sentences: Rows = []
        for tokens in all_tokens:
            if not tokens or attribute not in DENSE_FEATURIZABLE_ATTRIBUTES:
                # Attributes such as intents only ever had token rows.
                sentences.append(None)
                continue
            row = vectorizer.transform([" ".join(tokens)])
            row.sort_indices()
            sentences.append(row.tocoo())
        return [None] * len(sentences), sentences
