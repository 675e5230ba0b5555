"""components.serve: the same checks and results as stock Rasa, for less work."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction

from components.serve import install

GOOD: dict[str, Any] = {
    "events": [
        {"event": "slot", "name": "country", "value": "ES", "timestamp": None},
        {"event": "active_loop", "name": None},
    ],
    "responses": [{"text": "hello", "custom": {"topic": "contact-embassy"}}],
}
BAD: list[dict[str, Any]] = [
    {"events": [{"event": "slot"}]},  # a slot event without its name
    {"events": [{"name": "country"}]},  # no event type
    {"events": "not a list"},
    {"responses": ["not an object"]},
]


@pytest.fixture(scope="module")
def remote_action() -> RemoteAction:
    return RemoteAction("action_answer_topic", None)


def test_the_patched_check_accepts_what_rasa_accepts(remote_action: RemoteAction) -> None:
    stock = RemoteAction._validate_action_result
    assert stock(remote_action, GOOD) is True
    install()
    try:
        assert remote_action._validate_action_result(GOOD) is True
    finally:
        RemoteAction._validate_action_result = stock  # type: ignore[method-assign]


@pytest.mark.parametrize("reply", BAD)
def test_the_patched_check_refuses_what_rasa_refuses(
    remote_action: RemoteAction, reply: dict[str, Any]
) -> None:
    stock = RemoteAction._validate_action_result
    with pytest.raises(ValidationError):
        stock(remote_action, reply)
    install()
    try:
        with pytest.raises(ValidationError, match="Failed to validate Action server response"):
            remote_action._validate_action_result(reply)
    finally:
        RemoteAction._validate_action_result = stock  # type: ignore[method-assign]


def test_sqlite_tracker_connections_use_wal(tmp_path: Any) -> None:
    import sqlalchemy

    from components.serve import install_sqlite_pragmas

    install_sqlite_pragmas()
    install_sqlite_pragmas()  # idempotent
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'tracker.db'}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    engine.dispose()


def test_endpoint_calls_reuse_one_session_and_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from aiohttp import web
    from rasa.utils.endpoints import EndpointConfig

    from components.serve import install_kept_sessions

    # Restored after the test: other tests see Rasa's own sessions.
    monkeypatch.setattr(EndpointConfig, "session", EndpointConfig.session)
    install_kept_sessions()

    async def scenario() -> tuple[list[Any], list[Any], bool]:
        peers: list[Any] = []

        async def webhook(request: web.Request) -> web.Response:
            peers.append(
                request.transport.get_extra_info("peername") if request.transport else None
            )
            return web.json_response({"events": [], "responses": []})

        app = web.Application()
        app.router.add_post("/webhook", webhook)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            endpoint = EndpointConfig(url=f"http://127.0.0.1:{port}/webhook")
            replies = [await endpoint.request(json={"next_action": "x"}) for _ in range(3)]
            async with endpoint.session() as first, endpoint.session() as second:
                same = first is second and not first.closed
            await first.close()
        finally:
            await runner.cleanup()
        return replies, peers, same

    replies, peers, same = asyncio.run(scenario())
    assert replies == [{"events": [], "responses": []}] * 3
    assert same
    # Three requests, one TCP connection (the same client address and port).
    assert len(peers) == 3 and len(set(peers)) == 1


def test_column_major_intent_weights_give_the_same_probabilities(tmp_path: Path) -> None:
    from rasa.engine.graph import ExecutionContext, GraphSchema
    from rasa.engine.storage.local_model_storage import LocalModelStorage
    from rasa.engine.storage.resource import Resource
    from rasa.nlu.classifiers.logistic_regression_classifier import (
        LogisticRegressionClassifier,
    )
    from scipy.sparse import random as sparse_random

    from components.serve import install_column_major_intent_weights

    storage = LocalModelStorage(tmp_path)
    resource = Resource("intent_classifier")
    context = ExecutionContext(GraphSchema({}), "test")
    config = {**LogisticRegressionClassifier.get_default_config(), "random_state": 42}
    trained = LogisticRegressionClassifier.create(config, storage, resource, context)
    features = sparse_random(60, 500, density=0.05, format="csr", random_state=7)
    trained.clf.fit(features, [f"intent_{row % 4}" for row in range(60)])
    trained.persist()

    stock = LogisticRegressionClassifier.load(config, storage, resource, context)
    original_load = LogisticRegressionClassifier.__dict__["load"]
    install_column_major_intent_weights()
    try:
        loaded = LogisticRegressionClassifier.load(config, storage, resource, context)
    finally:
        LogisticRegressionClassifier.load = original_load  # type: ignore[method-assign]
    assert loaded.clf.coef_.flags["F_CONTIGUOUS"]
    assert not stock.clf.coef_.flags["F_CONTIGUOUS"]
    messages = sparse_random(20, 500, density=0.05, format="csr", random_state=8)
    assert np.array_equal(loaded.clf.predict_proba(messages), stock.clf.predict_proba(messages))


MODEL = Path(__file__).resolve().parents[2] / "models" / "consular.tar.gz"


@pytest.mark.skipif(not MODEL.exists(), reason="no trained model: run make test")
def test_the_sequential_graph_runner_gives_what_dask_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rasa.core.channels.channel import UserMessage
    from rasa.engine.constants import PLACEHOLDER_MESSAGE, PLACEHOLDER_TRACKER
    from rasa.engine.loader import load_predict_graph_runner
    from rasa.engine.runner.dask import DaskGraphRunner
    from rasa.engine.storage.local_model_storage import LocalModelStorage
    from rasa.shared.core.events import ActionExecuted, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    from components.serve import execution_order, install_sequential_graph_runner

    # Rasa unpacks a model only into a folder that exists (else, silently,
    # some components load untrained).
    (tmp_path / "dask").mkdir()
    (tmp_path / "sequential").mkdir()
    metadata, dask_runner = load_predict_graph_runner(
        tmp_path / "dask", MODEL, LocalModelStorage, DaskGraphRunner
    )
    dask_run = DaskGraphRunner.run
    monkeypatch.setattr(DaskGraphRunner, "__init__", DaskGraphRunner.__init__)
    monkeypatch.setattr(DaskGraphRunner, "run", DaskGraphRunner.run)
    install_sequential_graph_runner()
    assert DaskGraphRunner.run is not dask_run
    _, sequential = load_predict_graph_runner(
        tmp_path / "sequential", MODEL, LocalModelStorage, DaskGraphRunner
    )

    # Every node needed by the target, once, after every node it needs.
    order = execution_order(metadata.predict_schema, [metadata.nlu_target])
    names = [name for name, _ in order]
    assert len(names) == len(set(names)) and names[-1] == metadata.nlu_target
    needed = metadata.predict_schema.minimal_graph_schema([metadata.nlu_target]).nodes
    assert set(names) == set(needed)
    for position, (_, needs) in enumerate(order):
        assert all(need not in needed or need in names[:position] for need in needs)

    texts = ["my passport was stolen in lisbon", "is it safe in thailand", "hello", "pizza?"]
    for text in texts:
        parsed = []
        for runner, run in ((dask_runner, dask_run), (sequential, DaskGraphRunner.run)):
            tracker = DialogueStateTracker("test", metadata.domain.slots)
            message = UserMessage(text)
            result = run(
                runner,
                inputs={PLACEHOLDER_MESSAGE: [message], PLACEHOLDER_TRACKER: tracker},
                targets=[metadata.nlu_target],
            )
            parsed.append(result[metadata.nlu_target][0].as_dict(only_output_properties=True))
        assert parsed[0] == parsed[1]
        assert parsed[1]["intent"]["name"]  # a real prediction, not an empty result

        tracker = DialogueStateTracker("test", metadata.domain.slots)
        tracker.update(ActionExecuted("action_listen"))
        tracker.update(UserUttered(text, parsed[0]["intent"], parsed[0].get("entities", [])))
        predictions = [
            run(runner, inputs={PLACEHOLDER_TRACKER: tracker}, targets=[metadata.core_target])[
                metadata.core_target
            ]
            for runner, run in ((dask_runner, dask_run), (sequential, DaskGraphRunner.run))
        ]
        assert predictions[0].probabilities == predictions[1].probabilities
        assert predictions[0].policy_name == predictions[1].policy_name
        assert max(predictions[1].probabilities) > 0


def test_action_server_requests_are_the_same_json(monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from components.serve import _dumps

    body = {
        "next_action": "action_answer_topic",
        "tracker": {
            "latest_message": {"text": 'où est l\'ambassade? <a href="/x">', "intent": None},
            "events": [{"event": "slot", "name": "country", "value": "FR", "timestamp": 1.5}],
            "slots": {"count": 3, "ok": True, "ratio": 0.1},
        },
    }
    assert json.loads(_dumps(body)) == body
    assert _dumps(body) == json.dumps(body, ensure_ascii=False, separators=(",", ":"))


@pytest.mark.skipif(not MODEL.exists(), reason="no trained model: run make test")
def test_direct_intent_rows_are_the_matrix_rasa_builds(tmp_path: Path) -> None:
    from rasa.core.channels.channel import UserMessage
    from rasa.engine.constants import PLACEHOLDER_MESSAGE, PLACEHOLDER_TRACKER
    from rasa.engine.loader import load_predict_graph_runner
    from rasa.engine.runner.dask import DaskGraphRunner
    from rasa.engine.storage.local_model_storage import LocalModelStorage
    from rasa.nlu.classifiers.logistic_regression_classifier import (
        LogisticRegressionClassifier,
    )
    from rasa.shared.core.trackers import DialogueStateTracker

    from components.serve import sentence_rows

    (tmp_path / "model").mkdir()
    metadata, runner = load_predict_graph_runner(
        tmp_path / "model", MODEL, LocalModelStorage, DaskGraphRunner
    )
    classifier = next(
        name
        for name, node in metadata.predict_schema.nodes.items()
        if node.uses is LogisticRegressionClassifier
    )
    featurised = metadata.predict_schema.nodes[classifier].needs["messages"]
    texts = ["my passport was stolen in lisbon", "HELP!!", "hospital in bangkok ok?", "x"]
    messages = [
        runner.run(
            inputs={
                PLACEHOLDER_MESSAGE: [UserMessage(text)],
                PLACEHOLDER_TRACKER: DialogueStateTracker("t", []),
            },
            targets=[featurised],
        )[featurised][0]
        for text in texts
    ]
    stock = LogisticRegressionClassifier._create_X(None, messages)  # type: ignore[arg-type]
    direct = sentence_rows(messages)
    assert direct is not None
    assert direct.shape == stock.shape and direct.shape[0] == len(texts)
    assert direct.dtype == stock.dtype
    assert (direct != stock).nnz == 0 and direct.nnz > 0


@pytest.mark.skipif(not MODEL.exists(), reason="no trained model: run make test")
def test_shared_prediction_states_predict_what_rasa_predicts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every conversation test, replayed: the same states and predictions, from fewer replays."""
    from collections import OrderedDict

    from rasa.core.agent import Agent
    from rasa.core.featurizers.tracker_featurizers import TrackerFeaturizer
    from rasa.shared.core.constants import ACTION_SESSION_START_NAME
    from rasa.shared.core.events import ActionExecuted
    from rasa.shared.core.trackers import DialogueStateTracker
    from test_tracker_trimming import CONVERSATIONS, conversation, predicted

    from components import serve

    processor = Agent.load(str(MODEL)).processor
    assert processor is not None
    domain = processor.domain
    rule_only = {"rule_only_slots": [], "rule_only_loops": []}

    def predictions() -> list[tuple[Any, ...]]:
        found = []
        for path in CONVERSATIONS:
            tracker = DialogueStateTracker(path.stem, domain.slots)
            for event in conversation(path, domain):
                if (
                    isinstance(event, ActionExecuted)
                    and event.action_name != ACTION_SESSION_START_NAME
                ):
                    # A copy holds the same event objects: asked twice, the
                    # second look finds the kept states, and the first
                    # answer's in-place edits must not leak into it.
                    found.append(predicted(processor, tracker.copy()))
                    assert predicted(processor, tracker.copy()) == found[-1]
                tracker.update(event)
        return found

    stock = predictions()
    monkeypatch.setattr(TrackerFeaturizer, "_create_states", TrackerFeaturizer._create_states)
    monkeypatch.setattr(serve._KeptStates, "built", OrderedDict())
    replays = []
    build = serve._build

    def counted(*args: Any) -> Any:
        replays.append(1)
        return build(*args)

    monkeypatch.setattr(serve, "_build", counted)
    serve.install_shared_prediction_states()
    assert predictions() == stock

    # The states themselves, for one growing tracker per file (so that new
    # events extend the kept states), with and without unset slots, as the
    # stock domain builds them.
    looks = 0
    replays.clear()
    for omit in (False, True):
        for path in CONVERSATIONS:
            tracker = DialogueStateTracker(path.stem, domain.slots)
            for event in conversation(path, domain):
                tracker.update(event)
                looks += 1
                shared = TrackerFeaturizer._create_states(tracker, domain, omit, False, rule_only)
                assert shared == domain.states_for_tracker_history(
                    tracker, omit_unset_slots=omit
                ), f"{path.name}, after {len(tracker.events)} events, omit {omit}"
                shared[-1].clear()  # the caller's own copy: the next look is unharmed
    # Most looks went on from the last; a loop starting or ending (the
    # forms in these stories) or a new file replayed everything.
    assert len(replays) < looks / 3


def test_the_heap_is_frozen_once_the_model_is_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    import gc

    from rasa.core import run as rasa_run

    from components.serve import install_frozen_startup_heap

    loaded = object()
    frozen_while_loading = []

    async def load_agent_on_start(*args: Any, **kwargs: Any) -> Any:
        frozen_while_loading.append(gc.get_freeze_count())
        return loaded

    monkeypatch.setattr(rasa_run, "load_agent_on_start", load_agent_on_start)
    install_frozen_startup_heap()
    try:
        assert asyncio.run(rasa_run.load_agent_on_start("model", None, None, None, None)) is loaded
        # Nothing was frozen before the model was loaded; everything alive is now.
        assert frozen_while_loading == [0]
        assert gc.get_freeze_count() > 1000
    finally:
        gc.unfreeze()


@pytest.mark.skipif(not MODEL.exists(), reason="no trained model: run make test")
def test_fast_rule_lookup_finds_the_rules_rasa_finds(monkeypatch: pytest.MonkeyPatch) -> None:
    """At every point of every conversation test, text and intent states, both rule tables."""
    from rasa.core.agent import Agent
    from rasa.core.policies.rule_policy import RULES, RULES_FOR_LOOP_UNHAPPY_PATH, RulePolicy
    from rasa.shared.core.events import ActionExecuted
    from rasa.shared.core.trackers import DialogueStateTracker
    from test_tracker_trimming import CONVERSATIONS, conversation, predicted

    from components.serve import install_fast_rule_lookup

    processor = Agent.load(str(MODEL)).processor
    assert processor is not None
    domain = processor.domain
    # The trained policy, as the graph runner holds it.
    policies = [
        node._component
        for node in processor.graph_runner._instantiated_nodes.values()  # type: ignore[attr-defined]
        if isinstance(getattr(node, "_component", None), RulePolicy)
    ]
    assert len(policies) == 1
    policy = policies[0]
    stock = RulePolicy._get_possible_keys
    monkeypatch.setattr(RulePolicy, "_get_possible_keys", RulePolicy._get_possible_keys)
    install_fast_rule_lookup()
    fast = RulePolicy._get_possible_keys
    assert fast is not stock

    compared = found = 0
    stock_predictions, fast_predictions = [], []
    for path in CONVERSATIONS:
        tracker = DialogueStateTracker(path.stem, domain.slots)
        for event in conversation(path, domain):
            if isinstance(event, ActionExecuted):
                for use_text in (True, False):
                    states = policy._prediction_states(
                        tracker, domain, use_text, rule_only_data=policy._get_rule_only_data()
                    )
                    for table in (RULES, RULES_FOR_LOOP_UNHAPPY_PATH):
                        keys = stock(policy, policy.lookup[table], states)
                        assert fast(policy, policy.lookup[table], states) == keys
                        compared += 1
                        found += bool(keys)
                monkeypatch.setattr(RulePolicy, "_get_possible_keys", stock)
                stock_predictions.append(predicted(processor, tracker.copy()))
                monkeypatch.setattr(RulePolicy, "_get_possible_keys", fast)
                fast_predictions.append(predicted(processor, tracker.copy()))
            tracker.update(event)
    assert fast_predictions == stock_predictions
    # Not vacuous: most lookups found rules.
    assert compared > 1000 and found > compared / 3


@pytest.mark.skipif(not MODEL.exists(), reason="no trained model: run make test")
def test_reading_actions_run_on_the_tracker_itself_with_the_same_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same events, replies and action server request, with one copy fewer per action."""
    from rasa.core.actions.action import ActionBotResponse, ActionListen, RemoteAction
    from rasa.core.agent import Agent
    from rasa.core.channels.channel import CollectingOutputChannel
    from rasa.core.policies.policy import PolicyPrediction
    from rasa.core.processor import MessageProcessor
    from rasa.shared.core.events import ActionExecuted, SlotSet
    from rasa.shared.core.trackers import DialogueStateTracker
    from rasa.utils.endpoints import EndpointConfig
    from test_tracker_trimming import CONVERSATIONS, conversation

    from components.serve import install_uncopied_tracker_for_reading_actions

    processor = Agent.load(str(MODEL)).processor
    assert processor is not None
    domain = processor.domain
    sent: list[Any] = []

    async def request(self: Any, **kwargs: Any) -> dict[str, Any]:
        sent.append(kwargs["json"])
        return {
            "events": [{"event": "slot", "name": "topic", "value": "travel-advice"}],
            "responses": [{"text": f"answer to {kwargs['json']['next_action']}"}],
        }

    monkeypatch.setattr(EndpointConfig, "request", request)
    copies: list[int] = []
    copy = DialogueStateTracker.copy

    def counted_copy(self: Any) -> Any:
        copies.append(1)
        return copy(self)

    monkeypatch.setattr(DialogueStateTracker, "copy", counted_copy)
    endpoint = EndpointConfig(url="http://127.0.0.1:9/webhook")
    actions = [
        ActionListen(),
        ActionBotResponse("utter_greet"),
        RemoteAction("action_answer_topic", endpoint),
        processor._get_action("country_form"),  # a form: always a copy
    ]
    events = conversation(CONVERSATIONS[0], domain)
    points = [i for i, event in enumerate(events) if isinstance(event, ActionExecuted)][1:]
    assert len(points) > 5

    def untimed(value: Any) -> Any:
        # Rasa stamps the policy's events with the time they are applied.
        if isinstance(value, dict):
            return {
                key: untimed(item)
                for key, item in value.items()
                if key not in ("timestamp", "latest_event_time")
            }
        if isinstance(value, list):
            return [untimed(item) for item in value]
        return value

    def outcomes() -> list[Any]:
        found = []
        for point in points:
            for action in actions:
                for policy_events in ([], [SlotSet("officer_offered", None, timestamp=1.0)]):
                    tracker = DialogueStateTracker.from_events(
                        "reading", events[:point], domain.slots
                    )
                    before = len(copies)
                    output = CollectingOutputChannel()
                    prediction = PolicyPrediction([], "RulePolicy", events=policy_events)
                    go_on = asyncio.run(
                        processor._run_action(action, tracker, output, processor.nlg, prediction)
                    )
                    found.append(
                        (
                            action.name(),
                            bool(policy_events),
                            go_on,
                            untimed([event.as_dict() for event in tracker.events]),
                            output.messages,
                            untimed(sent[-1]) if action.name() == "action_answer_topic" else None,
                            len(copies) - before,
                        )
                    )
        return found

    stock = outcomes()
    monkeypatch.setattr(MessageProcessor, "_run_action", MessageProcessor._run_action)
    install_uncopied_tracker_for_reading_actions()
    sent.clear()
    patched = outcomes()
    assert len(patched) == len(stock)
    for stock_row, patched_row in zip(stock, patched, strict=True):
        for part, (was, now) in enumerate(zip(stock_row[:-1], patched_row[:-1], strict=True)):
            assert now == was, (stock_row[:2], part)
        reading = stock_row[0] != "country_form" and not stock_row[1]
        assert patched_row[-1] == stock_row[-1] - (1 if reading else 0), stock_row[:2]
    # The tracker is left without the borrowed method.
    tracker = DialogueStateTracker.from_events("after", events[:5], domain.slots)
    assert "copy" not in vars(tracker)


def test_a_domain_is_checked_for_emptiness_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from rasa.shared.core.domain import Domain

    from components.serve import install_once_per_domain_emptiness

    monkeypatch.setattr(Domain, "is_empty", Domain.is_empty)
    written = []
    as_dict = Domain.as_dict

    def counted(self: Domain) -> dict[str, Any]:
        written.append(1)
        return as_dict(self)

    monkeypatch.setattr(Domain, "as_dict", counted)
    full = Domain.from_dict({"intents": ["greet"], "responses": {"utter_hi": [{"text": "hi"}]}})
    empty = Domain.empty()
    stock = (full.is_empty(), empty.is_empty())
    install_once_per_domain_emptiness()
    assert (full.is_empty(), empty.is_empty()) == stock == (False, True)
    written.clear()
    for _ in range(3):
        assert not full.is_empty() and empty.is_empty()
    assert written == []


def test_rule_states_are_written_out_only_for_debug_logging(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import logging

    from rasa.core.policies.policy import Policy
    from rasa.core.policies.rule_policy import RulePolicy

    from components.serve import install_states_text_for_debug_only

    monkeypatch.setattr(RulePolicy, "format_tracker_states", RulePolicy.format_tracker_states)
    states = [{"user": {"intent": "greet"}, "prev_action": {"action_name": "action_listen"}}]
    stock = Policy.format_tracker_states(states)
    assert "greet" in stock
    logger = logging.getLogger(RulePolicy.__module__)
    level, disabled = logger.level, logging.root.manager.disable
    install_states_text_for_debug_only()
    try:
        logging.disable(logging.NOTSET)  # whatever earlier tests switched off
        logger.setLevel(logging.INFO)
        assert "greet" not in RulePolicy.format_tracker_states(states)
        logger.setLevel(logging.DEBUG)
        assert RulePolicy.format_tracker_states(states) == stock
        logging.disable(logging.DEBUG)
        assert "greet" not in RulePolicy.format_tracker_states(states)
    finally:
        logger.setLevel(level)
        logging.disable(disabled)
    assert Policy.format_tracker_states(states) == stock  # other policies unchanged


def test_a_rule_could_fit_the_text_look_only_after_listening_and_without_an_intent() -> None:
    from components.serve import could_fit_text

    listen = {"prev_action": {"action_name": "action_listen"}}
    assert not could_fit_text([{**listen, "user": {"intent": "greet"}}])
    assert not could_fit_text([{"prev_action": {"action_name": "utter_greet"}}])
    assert not could_fit_text([{"user": {"text": "hi"}}])  # a conversation start
    assert could_fit_text([{**listen, "user": {"text": "hi there"}}])
    assert could_fit_text([{**listen}])
    assert could_fit_text([{**listen, "user": {"intent": "should_not_be_set"}}])
    # Whatever else the rule says, an intent the look's state lacks rules it out...
    assert not could_fit_text([{"prev_action": {"action_text": "Hi"}, "user": {"intent": "x"}}])
    # ...and what is not understood here counts as a possible fit.
    assert could_fit_text([{"prev_action": {"action_text": "Hi"}}])
    assert could_fit_text([])


def test_the_text_look_runs_whenever_a_rule_could_fit_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from rasa.core.policies.rule_policy import RULES, RulePolicy

    from components.serve import TEXT_RULES, install_text_look_only_with_text_rules

    looks: list[bool] = []

    def stock(self: Any, tracker: Any, domain: Any, use_text: bool) -> tuple[Any, ...]:
        looks.append(use_text)
        return "utter_hi", "key", False

    monkeypatch.setattr(RulePolicy, "_find_action_from_rules", stock)
    install_text_look_only_with_text_rules()
    listen = {"prev_action": {"action_name": "action_listen"}}
    by_intent = json.dumps([{**listen, "user": {"intent": "greet"}}])
    by_text = json.dumps([{**listen, "user": {"text": "hi there"}}])

    class Policy:
        _rule_key_to_state = staticmethod(json.loads)

        def __init__(self, keys: list[str]) -> None:
            self.lookup = {RULES: dict.fromkeys(keys, "utter_hi")}

    intents_only, with_text = Policy([by_intent]), Policy([by_intent, by_text])
    find = RulePolicy._find_action_from_rules
    assert find(intents_only, None, None, True) == (None, None, False)  # type: ignore[arg-type]
    assert find(intents_only, None, None, False) == ("utter_hi", "key", False)  # type: ignore[arg-type]
    assert find(with_text, None, None, True) == ("utter_hi", "key", False)  # type: ignore[arg-type]
    assert looks == [False, True]
    # Worked out once per table of rules, and again for a new table.
    assert getattr(intents_only, TEXT_RULES)[1] is False
    intents_only.lookup = {RULES: {by_text: "utter_hi"}}
    assert find(intents_only, None, None, True) == ("utter_hi", "key", False)  # type: ignore[arg-type]


@pytest.mark.skipif(not MODEL.exists(), reason="no trained model: run make test")
def test_skipping_the_text_look_predicts_what_rasa_predicts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every point of every conversation test: stock's text look finds nothing, same predictions."""
    from rasa.core.agent import Agent
    from rasa.core.policies.rule_policy import RulePolicy
    from rasa.shared.core.constants import ACTION_LISTEN_NAME
    from rasa.shared.core.events import ActionExecuted
    from rasa.shared.core.trackers import DialogueStateTracker
    from test_tracker_trimming import CONVERSATIONS, conversation, predicted

    from components.serve import install_text_look_only_with_text_rules

    processor = Agent.load(str(MODEL)).processor
    assert processor is not None
    domain = processor.domain
    policy = next(
        node._component
        for node in processor.graph_runner._instantiated_nodes.values()  # type: ignore[attr-defined]
        if isinstance(getattr(node, "_component", None), RulePolicy)
    )
    stock = RulePolicy._find_action_from_rules
    monkeypatch.setattr(RulePolicy, "_find_action_from_rules", stock)
    install_text_look_only_with_text_rules()
    skipping = RulePolicy._find_action_from_rules
    assert skipping is not stock

    text_looks = 0
    stock_predictions, skipping_predictions = [], []
    for path in CONVERSATIONS:
        tracker = DialogueStateTracker(path.stem, domain.slots)
        for event in conversation(path, domain):
            if isinstance(event, ActionExecuted):
                if tracker.latest_action_name == ACTION_LISTEN_NAME:
                    action, _source, _unhappy = stock(policy, tracker, domain, True)
                    assert action is None, f"{path.name}: a rule fitted the text look"
                    text_looks += 1
                monkeypatch.setattr(RulePolicy, "_find_action_from_rules", stock)
                stock_predictions.append(predicted(processor, tracker.copy()))
                monkeypatch.setattr(RulePolicy, "_find_action_from_rules", skipping)
                skipping_predictions.append(predicted(processor, tracker.copy()))
            tracker.update(event)
    assert skipping_predictions == stock_predictions
    assert text_looks > 100  # not vacuous: the look was skipped this often


def _prefixes_of_every_conversation_test(domain: Any) -> Any:
    """A tracker after each event of each conversation test (one tracker per file, growing)."""
    from rasa.shared.core.trackers import DialogueStateTracker
    from test_tracker_trimming import CONVERSATIONS, conversation

    for path in CONVERSATIONS:
        tracker = DialogueStateTracker(path.stem, domain.slots)
        yield tracker
        for event in conversation(path, domain):
            tracker.update(event)
            yield tracker


def test_the_quick_session_check_reads_what_rasa_reads() -> None:
    """At every point of every conversation test, and after rewinds, restarts and loop re-runs."""
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import (
        ActionExecuted,
        ActiveLoop,
        Restarted,
        SlotSet,
        UserUtteranceReverted,
        UserUttered,
    )
    from rasa.shared.core.trackers import DialogueStateTracker

    from components.serve import has_applied_events, latest_applied_user_message

    domain = Domain.load(str(Path(__file__).resolve().parents[2] / "domain.yml"))
    looks = loops = 0
    for tracker in _prefixes_of_every_conversation_test(domain):
        assert has_applied_events(tracker) == bool(tracker.applied_events())
        assert latest_applied_user_message(tracker) is tracker.get_last_event_for(UserUttered)
        looks += 1
        loops += tracker.active_loop_name is not None
    assert looks > 500 and loops > 20

    def listen() -> ActionExecuted:
        return ActionExecuted("action_listen")

    form = "country_form"
    cases = {
        "rewound": [listen(), UserUttered("a"), listen(), UserUttered("b"),
                    UserUtteranceReverted()],
        "restarted": [listen(), UserUttered("a"), Restarted(), listen()],
        "restarted, nothing after": [listen(), UserUttered("a"), Restarted()],
        # A form asked, was answered and ran again: the answer is not applied.
        "form answered": [
            listen(), UserUttered("a"), ActionExecuted(form), ActiveLoop(form), listen(),
            UserUttered("Spain"), ActionExecuted(form), SlotSet("country", "ES"),
        ],
        "empty": [],
    }  # fmt: skip
    for name, events in cases.items():
        tracker = DialogueStateTracker.from_events("c", events, domain.slots)
        assert has_applied_events(tracker) == bool(tracker.applied_events()), name
        found = latest_applied_user_message(tracker)
        assert found is tracker.get_last_event_for(UserUttered), name
    answered = DialogueStateTracker.from_events("c", cases["form answered"], domain.slots)
    assert latest_applied_user_message(answered).text == "a"  # Rasa's answer, not "Spain"


@pytest.mark.skipif(not MODEL.exists(), reason="no trained model: run make test")
def test_the_quick_session_check_starts_a_session_when_rasa_would(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import time

    from rasa.core.agent import Agent
    from rasa.core.channels.channel import CollectingOutputChannel
    from rasa.core.processor import MessageProcessor
    from rasa.shared.core.events import ActionExecuted, SessionStarted, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    from components.serve import install_quick_session_check

    processor = Agent.load(str(MODEL)).processor
    assert processor is not None
    config = processor.domain.session_config
    assert config.are_sessions_enabled()
    stock = MessageProcessor._update_tracker_session
    monkeypatch.setattr(MessageProcessor, "_update_tracker_session", stock)

    def trackers() -> dict[str, DialogueStateTracker]:
        now = time.time()
        old = now - (config.session_expiration_time + 5) * 60

        def session(at: float) -> list[Any]:
            return [
                ActionExecuted("action_session_start", timestamp=at - 2),
                SessionStarted(timestamp=at - 2),
                ActionExecuted("action_listen", timestamp=at - 1),
                UserUttered("hello", timestamp=at),
                ActionExecuted("action_listen", timestamp=at + 1),
            ]

        slots = processor.domain.slots
        return {
            "new": DialogueStateTracker("new", slots),
            "recent": DialogueStateTracker.from_events("recent", session(now), slots),
            "expired": DialogueStateTracker.from_events("expired", session(old), slots),
        }

    def sessions_started() -> dict[str, int]:
        counts = {}
        for name, tracker in trackers().items():
            asyncio.run(processor._update_tracker_session(tracker, CollectingOutputChannel()))
            counts[name] = sum(isinstance(e, SessionStarted) for e in tracker.events)
        return counts

    expected = sessions_started()
    assert expected == {"new": 1, "recent": 1, "expired": 2}
    install_quick_session_check()
    assert MessageProcessor._update_tracker_session is not stock
    assert sessions_started() == expected
