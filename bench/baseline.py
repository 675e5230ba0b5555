"""TF-IDF + logistic regression on the same split (run in the Rasa environment: scikit-learn).

Usage: baseline.py TRAIN.jsonl TEST.jsonl OUTPUT.jsonl, lines {"text", "intent"}.
"""

from __future__ import annotations

import json
import sys

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline, make_union


def main() -> int:
    train_path, test_path, out_path = sys.argv[1:4]
    with open(train_path, encoding="utf-8") as lines:
        train = [json.loads(line) for line in lines]
    with open(test_path, encoding="utf-8") as lines:
        test = [json.loads(line) for line in lines]
    model = make_pipeline(
        make_union(
            TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True),
        ),
        LogisticRegression(max_iter=2000, C=10),
    )
    model.fit([row["text"] for row in train], [row["intent"] for row in train])
    predicted = model.predict([row["text"] for row in test])
    with open(out_path, "w", encoding="utf-8") as out:
        for row, intent in zip(test, predicted, strict=True):
            out.write(json.dumps({"text": row["text"], "intent": str(intent)}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
