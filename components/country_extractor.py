"""Country mentions: ISO codes from the gazetteer's entity ruler, and a shared token.

The spaCy pipeline (built from the project's gazetteer) marks every mention of a
country, territory, demonym or major city as a ``COUNTRY`` entity whose pattern
id is the ISO 3166-1 alpha-2 code. This component turns those into Rasa
``country`` entities carrying the code, and replaces the mention's tokens with a
single placeholder token so the intent classifier learns "embassy in
<country>" once instead of once per country. Without the placeholder, a
phrasing seen only with "Spain" would not generalise to "Peru".
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import SPACY_DOCS, TOKENS_NAMES
from rasa.nlu.tokenizers.tokenizer import Token
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

COUNTRY_LABEL = "COUNTRY"
ENTITY_NAME = "country"
PLACEHOLDER = "__country__"
# Words before a mention that make it the place the citizen is in or going to
# ("visas in Canada"), and words that make it where they come from.
DESTINATION_CUES = frozenset({"in", "to", "into", "for", "visit", "visiting", "at", "near"})
ORIGIN_CUES = frozenset({"from"})


@DefaultV1Recipe.register(
    # A featurizer type puts the component in both the training and the
    # inference graph, before the featurizers that read its tokens.
    [DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER],
    is_trainable=False,
)
class CountryEntityExtractor(GraphComponent):
    """Adds ``country`` entities (ISO codes) and masks country tokens."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """No options: the gazetteer decides what a country mention is."""
        return {}

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "CountryEntityExtractor":
        """Creates the component (it holds no state)."""
        return cls()

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Masks country tokens in training examples, as at inference."""
        for example in training_data.training_examples:
            self._mask_tokens(example)
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        """Adds country entities to each message and masks its country tokens."""
        for message in messages:
            spans = _country_spans(message)
            if spans:
                entities = list(message.get(ENTITIES, []))
                known = {(e.get("start"), e.get("end"), e.get("entity")) for e in entities}
                # One country per message, so the slot never depends on entity order.
                for start, end, iso2, text in [_destination(message, spans)]:
                    if (start, end, ENTITY_NAME) in known:
                        continue
                    entities.append(
                        {
                            "entity": ENTITY_NAME,
                            "value": iso2,
                            "start": start,
                            "end": end,
                            "confidence_entity": 1.0,
                            "extractor": self.__class__.__name__,
                            "text": text,
                        }
                    )
                message.set(ENTITIES, entities, add_to_output=True)
            self._mask_tokens(message, spans)
        return messages

    @staticmethod
    def _mask_tokens(
        message: Message, spans: Optional[List[tuple[int, int, str, str]]] = None
    ) -> None:
        spans = _country_spans(message) if spans is None else spans
        tokens: Optional[List[Token]] = message.get(TOKENS_NAMES[TEXT])
        if not spans or not tokens:
            return
        masked: List[Token] = []
        for token in tokens:
            span = next((s for s in spans if token.start < s[1] and token.end > s[0]), None)
            if span is None:
                masked.append(token)
            elif not masked or masked[-1].start != span[0] or masked[-1].text != PLACEHOLDER:
                masked.append(Token(PLACEHOLDER, span[0], end=span[1], lemma=PLACEHOLDER))
        message.set(TOKENS_NAMES[TEXT], masked)


def _destination(
    message: Message, spans: List[tuple[int, int, str, str]]
) -> tuple[int, int, str, str]:
    """The mention the message is about: after "in/to/for…", not after "from"; else the last."""
    text = message.get(TEXT) or ""

    def score(span: tuple[int, int, str, str]) -> tuple[int, int]:
        before = text[: span[0]].split()
        cue = before[-1].lower() if before else ""
        rank = 2 if cue in DESTINATION_CUES else 0 if cue in ORIGIN_CUES else 1
        return rank, span[0]

    return max(spans, key=score)


def _country_spans(message: Message) -> List[tuple[int, int, str, str]]:
    doc = message.get(SPACY_DOCS[TEXT])
    if doc is None:
        return []
    return [
        (ent.start_char, ent.end_char, ent.ent_id_.upper(), ent.text)
        for ent in doc.ents
        if ent.label_ == COUNTRY_LABEL and ent.ent_id_
    ]
