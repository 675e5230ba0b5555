"""Trimmed trackers predict exactly what whole ones do, with the trained model.

components/tracker_store.py trims a cached tracker to its last turns. The
conversation tests (tests/conversations) are replayed here as long
conversations, one per file, and at every point where Rasa predicts an
action the trained model's policies are asked twice: with the whole tracker
and with the trimmed one. The server trims every few turns; here every
prediction meets a tracker trimmed to its last six turns (the server keeps
four, but its turns are longer than these stories' ones).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from rasa.core.agent import Agent
from rasa.core.processor import MessageProcessor
from rasa.shared.core.constants import ACTION_LISTEN_NAME, ACTION_SESSION_START_NAME
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, Event, SessionStarted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.core.training_data.story_reader.yaml_story_reader import YAMLStoryReader

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from components.tracker_store import trim_tracker  # noqa: E402

MODEL = ROOT / "models" / "consular.tar.gz"
CONVERSATIONS = sorted((ROOT / "tests" / "conversations").glob("*.yml"))
KEEP_TURNS = 6


@pytest.fixture(scope="module")
def agent() -> Agent:
    if not MODEL.exists():
        pytest.skip(f"{MODEL} is missing: train it first (make test does)")
    return Agent.load(str(MODEL))


def conversation(path: Path, domain: Domain) -> list[Event]:
    """Every story of a conversation test file, one after the other, as one conversation."""
    events: list[Event] = [ActionExecuted(ACTION_SESSION_START_NAME), SessionStarted()]
    for step in YAMLStoryReader(domain).read_from_file(path):
        for event in step.events:
            if isinstance(event, UserUttered):
                events.append(ActionExecuted(ACTION_LISTEN_NAME))
            events.append(event)
    events.append(ActionExecuted(ACTION_LISTEN_NAME))
    return events


def test_a_trimmed_tracker_predicts_what_the_whole_one_does(agent: Agent) -> None:
    processor = agent.processor
    assert processor is not None
    domain = processor.domain
    compared = trimmed_count = 0
    for path in CONVERSATIONS:
        whole = DialogueStateTracker(path.stem, domain.slots)
        for event in conversation(path, domain):
            if isinstance(event, ActionExecuted) and event.action_name != ACTION_SESSION_START_NAME:
                compared += 1
                trimmed = trim_tracker(whole, domain, KEEP_TURNS)
                if trimmed is not None:
                    trimmed_count += 1
                    assert len(trimmed.events) < len(whole.events)
                    assert predicted(processor, trimmed) == predicted(processor, whole.copy()), (
                        f"{path.name}, after {len(whole.events)} events"
                    )
            whole.update(event)
    # Not vacuous: most predictions met a trimmed tracker.
    assert trimmed_count > compared / 2


def predicted(processor: MessageProcessor, tracker: DialogueStateTracker) -> tuple[Any, ...]:
    """Everything of a prediction that the processor acts on."""
    prediction = processor._predict_next_with_tracker(tracker)
    return (
        processor.domain.action_names_or_texts[prediction.max_confidence_index],
        prediction.policy_name,
        prediction.max_confidence,
        prediction.hide_rule_turn,
        prediction.events,
        prediction.is_no_user_prediction,
    )
