"""A safety net for emergencies: an urgent message is never classified away.

SERVICE_CATALOGUE.md, "Urgent handling": an urgent message must never get a
generic fallback. The intent classifier generalises from examples and will
sometimes put an emergency phrased in a way it has not seen under
``out_of_scope``, a neighbouring non-urgent topic, or (via the
FallbackClassifier) ``nlu_fallback``. This component runs last, after the
FallbackClassifier, and only ever changes a non-urgent prediction into an
urgent one, for either of two reasons:

- **cue**: the message contains a reviewed cue phrase of an urgent topic,
  listed in ``data/urgent_cues.yml`` ("arrested", "passed away", "in intensive
  care", "kidnapped", "want to kill myself"...). The intent becomes the urgent
  topic the classifier scored highest among those whose cues matched.
- **urgent share**: the urgent intents together hold at least half of the
  classifier's probability (``urgent_share``), though no single one won; for
  example the FallbackClassifier fell back because ``kidnap`` and
  ``arrest_detention`` were close. Every urgent topic gets the same urgent
  handling, so the family's total is what counts. The intent becomes the
  classifier's favourite urgent one.

Why is recorded in the parse data under ``urgent_override`` (reason, topic,
cue and matched words, the urgent share and the classifier's own intent).

Cues are deliberately narrow (phrases about something happening to someone,
not topic words): "in hospital" is a cue, "hospital" is not, so "does travel
insurance cover hospital bills" stays with the classifier. Each topic, each
cue and the file as a whole can list ``unless`` phrases that switch cues off
for questions about rules, insurance or vaccines ("can i be arrested for...",
"heat stroke", "is there a risk of earthquakes").

The cue file is read at training time and stored in the model, so a served
model never depends on the working directory; its content is part of the
component's fingerprint, so editing it retrains the model.

Cue syntax (matched on whole words of the lower-cased message with
punctuation and apostrophes removed, so "don't" and "dont" are the same):

- ``word`` the word itself; ``word*`` any word starting with it;
- ``a|b|c`` any one of the single words (each may end in ``*``);
- ``(do not|dont|never)`` any one of the phrases in brackets;
- ``word?``, ``a|b?`` or ``(...)?`` optional;
- ``{group}`` any entry of a group defined under ``groups`` (entries may be
  several words and use ``*``, but not other groups);
- ``..`` up to three words of anything.

A cue is one such phrase, or a mapping ``{all: [phrase, ...], unless:
[phrase, ...]}``: every phrase of ``all`` somewhere in the message and none of
its own ``unless``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Text, Tuple

import yaml
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.nlu.constants import (
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

logger = logging.getLogger(__name__)

DEFAULT_CUES_PATH = "data/urgent_cues.yml"
CUES_FILE = "urgent_cues.json"
# Where the component records why it changed the intent (in the parse data).
URGENT_OVERRIDE_KEY = "urgent_override"
GAP_WORDS = 3
_APOSTROPHES = re.compile(r"['\u2019\u2018`´]")
_NOT_WORD = re.compile(r"[^a-z0-9*]+")
_GROUP = re.compile(r"^\{([a-z_]+)\}$")
_TOKENS = re.compile(r"\([^()]*\)\??|\S+")


class CueError(ValueError):
    """The cue file is malformed."""


def normalise(text: str) -> str:
    """Lower case, apostrophes dropped, everything but letters and digits a single space."""
    text = _APOSTROPHES.sub("", (text or "").lower())
    return " ".join(_NOT_WORD.sub(" ", text.replace("*", " ")).split())


def _words(alternative: str) -> Tuple[List[str], bool]:
    """The words of one alternative of a token ("arrest*", "a&e"), and whether it ends in ``*``."""
    star = alternative.endswith("*")
    words = _NOT_WORD.sub(" ", _APOSTROPHES.sub("", alternative.lower().rstrip("*"))).split()
    if not words:
        raise CueError(f"empty alternative {alternative!r}")
    return words, star


def _alternative(alternative: str) -> str:
    """One alternative of a token ("arrest*", "a&e") as a regular expression."""
    words, star = _words(alternative)
    pattern = " ".join(re.escape(word) for word in words)
    return pattern + ("[a-z0-9]*" if star else "")


def _alternatives(token: str, groups: Dict[str, List[str]]) -> List[str]:
    """The alternatives of one token without its ``?``: a group's entries, or its own."""
    group = _GROUP.match(token)
    if group:
        if group.group(1) not in groups:
            raise CueError(f"unknown group {token}")
        return groups[group.group(1)]
    if token.startswith("(") and token.endswith(")"):
        return token[1:-1].split("|")
    if any(c in token for c in "{}()"):
        raise CueError(f"malformed token {token!r}")
    return token.split("|")


def _token(token: str, groups: Dict[str, List[str]]) -> str:
    """One token of a cue as a regular expression that consumes its trailing space."""
    if token == "..":
        return f"(?:[a-z0-9]+ ){{0,{GAP_WORDS}}}"
    optional = token.endswith("?")
    alternatives = _alternatives(token[:-1] if optional else token, groups)
    body = "|".join(sorted((_alternative(a) for a in alternatives), key=len, reverse=True))
    return f"(?:(?:{body}) )" + ("?" if optional else "")


def compile_cue(cue: str, groups: Dict[str, List[str]]) -> "re.Pattern[str]":
    """A cue phrase as a regular expression over normalised text padded with spaces."""
    tokens = _TOKENS.findall(cue)
    depth = 0
    for char in cue:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth not in (0, 1):
            raise CueError(f"cue {cue!r}: brackets cannot be nested or left open")
    if depth:
        raise CueError(f"cue {cue!r}: brackets cannot be nested or left open")
    if not tokens or all(t == ".." or t.endswith("?") for t in tokens):
        raise CueError(f"cue {cue!r} needs at least one required word")
    if tokens[0] == ".." or tokens[-1] == "..":
        raise CueError(f"cue {cue!r} cannot start or end with a gap")
    try:
        return re.compile("(?<= )" + "".join(_token(t, groups) for t in tokens))
    except CueError as error:
        raise CueError(f"cue {cue!r}: {error}") from None


def first_words(cue: str, groups: Dict[str, List[str]]) -> Tuple[frozenset, Tuple[str, ...]]:
    """Words one of which every match of the cue contains: whole words, and word prefixes.

    Every token of a match starts at a word boundary and ends at one, so each
    required token's words are whole words of the message. Of the required
    tokens, the one whose words are longest (least likely to be everyday
    words like "i" or "my") is chosen; its alternatives give the first words.
    """
    best: Tuple[int, frozenset, Tuple[str, ...]] = (-1, frozenset(), ())
    for token in _TOKENS.findall(cue):
        if token == ".." or token.endswith("?"):
            continue
        words, prefixes = set(), set()
        for alternative in _alternatives(token, groups):
            parts, star = _words(alternative)
            if star and len(parts) == 1:
                prefixes.add(parts[0])
            else:
                words.add(parts[0])
        shortest = min(len(word) for word in words | prefixes)
        if shortest > best[0]:
            best = (shortest, frozenset(words), tuple(sorted(prefixes)))
    return best[1], best[2]


@dataclass(frozen=True)
class CueHit:
    """A cue of an urgent topic found in a message."""

    topic: str
    cue: str
    matched: str


Compiled = List[Tuple[str, "re.Pattern[str]"]]


@dataclass
class _Cue:
    """A cue: every phrase of ``all`` in the message, none of ``unless``."""

    label: str
    all: Compiled
    unless: Compiled

    def match(self, padded: str) -> Optional[str]:
        found = []
        for _, pattern in self.all:
            hit = pattern.search(padded)
            if hit is None:
                return None
            found.append(hit.group(0).strip())
        if any(pattern.search(padded) for _, pattern in self.unless):
            return None
        return " … ".join(found)


@dataclass
class _Topic:
    slug: str
    cues: List[_Cue]
    unless: Compiled
    # The first words of the single-phrase cues (see ``first_words``).
    words: frozenset = frozenset()
    prefixes: Tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # One pass over the message for all single-phrase cues: most messages
        # match none, and then the cues need not be tried one by one.
        simple = [cue.all[0][1].pattern for cue in self.cues if len(cue.all) == 1]
        self.any_simple = re.compile("|".join(f"(?:{p})" for p in simple)) if simple else None
        self.several = [cue for cue in self.cues if len(cue.all) > 1]

    def match(self, padded: str, words: frozenset) -> Optional[Tuple[_Cue, str]]:
        """The first cue (in the order of the file) that matches, and the words it matched.

        ``words`` are the message's words. Without one of the single-phrase
        cues' first words among them, that one pass is not needed either.
        """
        maybe_simple = (
            self.any_simple is not None
            and (
                not self.words.isdisjoint(words)
                or any(word.startswith(self.prefixes) for word in words)
            )
            and self.any_simple.search(padded) is not None
        )
        for cue in self.cues if maybe_simple else self.several:
            found = cue.match(padded)
            if found is not None:
                return cue, found
        return None


class UrgentCues:
    """The reviewed cue phrases of each urgent topic, compiled."""

    def __init__(self, document: Dict[str, Any]) -> None:
        if not isinstance(document, dict) or not isinstance(document.get("topics"), dict):
            raise CueError("the cue file needs a 'topics' mapping")
        raw_groups = document.get("groups") or {}
        groups: Dict[str, List[str]] = {}
        for name, entries in raw_groups.items():
            if not isinstance(entries, list) or not entries:
                raise CueError(f"group {name!r} needs a list of words")
            for entry in entries:
                if not isinstance(entry, str) or re.search(r"[|(){}?]|\.\.", entry):
                    raise CueError(f"group {name!r}: {entry!r} must be plain words (and *)")
            groups[str(name)] = entries
        self.document = document
        self.unless = self._compile(document.get("unless") or [], groups)
        self.topics: List[_Topic] = []
        for slug, spec in document["topics"].items():
            spec = spec or {}
            cues = [self._cue(entry, groups) for entry in spec.get("cues") or []]
            if not cues:
                raise CueError(f"topic {slug!r} has no cues")
            unless = self._compile(spec.get("unless") or [], groups)
            words: set = set()
            prefixes: set = set()
            for cue in cues:
                if len(cue.all) == 1:  # those of the one pass (_Topic.any_simple)
                    found = first_words(cue.all[0][0], groups)
                    words |= found[0]
                    prefixes |= set(found[1])
            self.topics.append(
                _Topic(str(slug), cues, unless, frozenset(words), tuple(sorted(prefixes)))
            )

    @classmethod
    def _cue(cls, entry: Any, groups: Dict[str, List[str]]) -> _Cue:
        if isinstance(entry, str):
            return _Cue(entry, cls._compile([entry], groups), [])
        if not isinstance(entry, dict) or set(entry) - {"all", "unless"} or not entry.get("all"):
            raise CueError(f"a cue is a phrase or {{all: [...], unless: [...]}}, not {entry!r}")
        phrases = entry["all"]
        if not isinstance(phrases, list):
            raise CueError(f"'all' needs a list of phrases in {entry!r}")
        label = " + ".join(str(p) for p in phrases)
        return _Cue(
            label, cls._compile(phrases, groups), cls._compile(entry.get("unless") or [], groups)
        )

    @staticmethod
    def _compile(phrases: Iterable[Any], groups: Dict[str, List[str]]) -> Compiled:
        compiled = []
        for phrase in phrases:
            if not isinstance(phrase, str):
                raise CueError(f"a cue must be a string, not {phrase!r}")
            compiled.append((phrase, compile_cue(phrase, groups)))
        return compiled

    @classmethod
    def from_file(cls, path: Path | str) -> "UrgentCues":
        """Reads and compiles a cue file (raises CueError when it is malformed)."""
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        return cls(document)

    @property
    def slugs(self) -> List[str]:
        """The urgent topics, in the order of the file."""
        return [topic.slug for topic in self.topics]

    def matches(self, text: str) -> List[CueHit]:
        """Every topic whose cues match the text (at most one hit per topic)."""
        padded = f" {normalise(text)} "
        words = frozenset(padded.split())
        hits = []
        # The cues first: most messages match none, and then the many
        # ``unless`` phrases need not be tried at all.
        for topic in self.topics:
            matched = topic.match(padded, words)
            if matched is None or any(pattern.search(padded) for _, pattern in topic.unless):
                continue
            hits.append(CueHit(topic.slug, matched[0].label, matched[1]))
        if hits and any(pattern.search(padded) for _, pattern in self.unless):
            return []
        return hits


def intent_of(slug: str) -> str:
    """The Rasa intent of a catalogue slug."""
    return slug.replace("-", "_")


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER],
    is_trainable=True,
)
class UrgentSafetyNet(GraphComponent, IntentClassifier):
    """Makes a message urgent when a reviewed cue says so or the urgent intents together win."""

    @classmethod
    def required_components(cls) -> List[type]:
        """None in the graph's sense: it only needs to come after the classifiers in config.yml.

        (Its training node reads no classifier output, so Rasa would not find
        the classifier among its ancestors.)
        """
        return []

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """The options.

        ``cues``: the cue file, relative to the project (read at training time).
        ``urgent_share``: when the urgent intents together hold at least this
        share of the classifier's probability, the message is urgent even
        though no single urgent intent won (the FallbackClassifier falls back
        when, say, ``kidnap`` and ``arrest_detention`` are close: either way it
        is an emergency). Needs the classifier's full ranking
        (``ranking_length: 0``); ``null`` switches the rule off.
        ``ranking_length``: how many intents of the ranking the message keeps
        once the net has used the whole of it (0 keeps all). The ranking
        travels with every user message in the tracker, to the action
        server and into the tracker store, and nothing after this component
        reads beyond its first entries.
        """
        return {"cues": DEFAULT_CUES_PATH, "urgent_share": 0.5, "ranking_length": 10}

    @classmethod
    def fingerprint_addon(cls, config: Dict[str, Any]) -> Optional[str]:
        """The cue file's content, so that editing it retrains the component."""
        path = Path(config.get("cues", DEFAULT_CUES_PATH))
        if not path.exists():
            return None
        return hashlib.sha256(path.read_bytes()).hexdigest()

    def __init__(
        self,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        cues: Optional[UrgentCues] = None,
    ) -> None:
        self.config = {**self.get_default_config(), **config}
        self._model_storage = model_storage
        self._resource = resource
        self.cues = cues

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "UrgentSafetyNet":
        """An untrained component: the cues are read by ``train``."""
        return cls(config, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        """Reads the cue file, checks every topic against the intents, stores it in the model."""
        path = Path(self.config["cues"])
        cues = UrgentCues.from_file(path)
        intents = set(training_data.intents)
        unknown = [slug for slug in cues.slugs if intent_of(slug) not in intents]
        if intents and unknown:
            raise CueError(f"{path}: topics without an intent in the training data: {unknown}")
        self.cues = cues
        with self._model_storage.write_to(self._resource) as folder:
            (folder / CUES_FILE).write_text(json.dumps(cues.document), encoding="utf-8")
        return self._resource

    @classmethod
    def load(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> "UrgentSafetyNet":
        """The component with the cues stored at training time."""
        try:
            with model_storage.read_from(resource) as folder:
                document = json.loads((folder / CUES_FILE).read_text(encoding="utf-8"))
        except (ValueError, OSError):
            logger.warning("UrgentSafetyNet: no stored cues; the safety net is off")
            return cls(config, model_storage, resource)
        return cls(config, model_storage, resource, UrgentCues(document))

    def process(self, messages: List[Message]) -> List[Message]:
        """Promotes an urgent intent where the prediction is not urgent but should be.

        Then cuts each message's ranking to ``ranking_length``.
        """
        keep = int(self.config.get("ranking_length") or 0)
        for message in messages:
            if self.cues is not None:
                self.process_one(message)
            if keep:
                ranking = message.get(INTENT_RANKING_KEY)
                if ranking and len(ranking) > keep:
                    message.set(INTENT_RANKING_KEY, ranking[:keep], add_to_output=True)
        return messages

    def process_one(self, message: Message) -> None:
        """Promotes an urgent intent in one message, if the cues or the urgent share say so."""
        assert self.cues is not None
        order = self.cues.slugs
        urgent = [intent_of(slug) for slug in order]
        predicted = dict(message.get(INTENT) or {})
        if predicted.get(INTENT_NAME_KEY) in urgent:
            return
        ranking: List[Dict[str, Any]] = list(message.get(INTENT_RANKING_KEY) or [])
        scores = {
            str(entry.get(INTENT_NAME_KEY)): float(entry.get(PREDICTED_CONFIDENCE_KEY) or 0.0)
            for entry in ranking
        }
        share = sum(scores.get(name, 0.0) for name in urgent)
        hits = self.cues.matches(message.get(TEXT) or "")
        threshold = self.config.get("urgent_share")
        by_share = threshold is not None and share >= float(threshold)
        if not hits and not by_share:
            return
        # Among the cued topics if any cue matched, else among all urgent ones:
        # the classifier's favourite, ties in the order of the cue file.
        candidates = [h.topic for h in hits] or order
        best = max(candidates, key=lambda t: (scores.get(intent_of(t), 0.0), -order.index(t)))
        reason: Dict[str, Any] = {
            "reason": "cue" if hits else "urgent share",
            "topic": best,
            "urgent_share": round(share, 4),
            "classified_as": predicted,
        }
        if hits:
            hit = next(h for h in hits if h.topic == best)
            reason.update(cue=hit.cue, matched=hit.matched, topics=[h.topic for h in hits])
        promote(message, intent_of(best), scores.get(intent_of(best), 0.0), ranking, reason)


def promote(
    message: Message,
    name: str,
    confidence: float,
    ranking: List[Dict[str, Any]],
    reason: Dict[str, Any],
) -> None:
    """Sets the intent, puts it first in the ranking and records why."""
    intent = {INTENT_NAME_KEY: name, PREDICTED_CONFIDENCE_KEY: confidence}
    message.set(INTENT, intent, add_to_output=True)
    message.set(
        INTENT_RANKING_KEY,
        [intent] + [e for e in ranking if e.get(INTENT_NAME_KEY) != name],
        add_to_output=True,
    )
    message.set(URGENT_OVERRIDE_KEY, reason, add_to_output=True)
    logger.debug("urgent override %s", reason)
