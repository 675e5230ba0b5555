"""``rasa run`` doing less work per message, with the same results.

Rasa 3.6 checks every reply from the action server with ``jsonschema.validate``,
which first re-validates Rasa's large, constant event schema against the
JSON Schema meta-schema, on every call. Profiled under load on this machine,
that re-check was about 40% of the Rasa server's CPU time. Here the schema is
checked once at start-up and each reply is validated exactly as before (the
same schema, the same best-matching error), without the repeated work.

The embedded profile's tracker store is an SQLite file, which Rasa opens
with SQLite's defaults: a rollback journal and a full sync on every commit,
taken on the event loop for every turn. Here SQLite connections use WAL with
``synchronous=NORMAL`` (an application crash loses nothing; a power cut may
lose the last turns' dialogue state, never a citizen's message, which the app
stores). The production profile's tracker store is PostgreSQL and is left as
it is.

Rasa also opens a new HTTP session, and so a new TCP connection, for every
call to the action server, and closes it after the reply. Here each endpoint
keeps one session whose connections are reused; an idle connection is
dropped by this side after ``KEEPALIVE_SECONDS``, well before the action
server (Sanic, 5 s) would close it, so a request never meets a connection
the server has just closed.

The intent classifier (scikit-learn's logistic regression) multiplies each
message's sparse features by the transposed weight matrix; stored row by row,
that transpose is copied whole to the layout SciPy needs on every message
(over a millisecond). Here the loaded weights are stored column by column
once, so the transpose needs no copy; the arithmetic, and so every
probability, is the same.

Rasa runs each message's NLU and each action prediction as a small graph
through dask's synchronous scheduler, which orders and wraps the tasks anew
on every call (about a tenth of the server's CPU per message here). Here the
same nodes run in the same dependency order, worked out once per set of
targets, one after another in the calling thread, as dask's synchronous
scheduler runs them anyway.

The intent classifier builds each message's row from the featurizers'
output through Rasa's general feature combination, which also copies and
joins every token-level matrix it then throws away. Here the row is joined
straight from the sentence-level matrices, in the same order: the same
matrix, so the same probabilities.

RulePolicy looks for a rule twice after each user message, once with the
message's text and once with its intent, and again before every further
action of the turn; each look rebuilt the states of the whole conversation
by replaying its events from the start (about a fifth of the server's CPU
per message here). Here the last states built for each recent conversation
are kept with the replay that made them: asked again for the same events
(the very same event objects, in the same order), the featurizer gets a
copy of them; asked for those events followed by new ones, the replay goes
on through the new ones only, unless one of them could change how the
earlier ones read (a restart, a rewind, a loop starting, ending or
running), when everything is replayed as before. Each caller gets its own
dictionaries, as the featurizer changes the last one in place.

RulePolicy then finds the rules that fit by checking every rule against
every state of the conversation, newest first, each check reversing the
rule's states anew; a conversation's states outnumber the longest rule's,
and any rule is known to fit once the states checked outnumber its own.
Here each rule's reversed states are worked out once, and the checking
stops once the states checked outnumber the longest remaining rule's: the
same rules are found, by the same test (``_does_rule_match_state``).

Python's cyclic garbage collector, in its full collections, walks every
object alive: with Rasa, TensorFlow and the model loaded, over 600,000 of
them, about 0.3 s each time, during which the server answers nothing. Under
ten conversations that came twice in 300 messages, a pause every turn in
flight waited through, and about 2 ms of CPU per message. Here everything
alive once the model is loaded is moved out of the collector's sight
(``gc.freeze``): it lives as long as the server anyway. Full collections
then walk only what was made since. (The service loads its model at start
and never through Rasa's HTTP API; a model replaced that way would keep the
old one's reference cycles in memory, and the new one would not be frozen.)

The body of every call to the action server is encoded with ``ujson`` (already
a dependency of Rasa's web server) rather than the standard library's
encoder: the same JSON, several times faster for the tracker sent each time.

Before running each action of a turn, Rasa copies the whole tracker by
replaying every event into a new one, so that events the policy attached to
its prediction can be tried on the copy and dropped if the action refuses
to run. Most predictions attach no events, and listening, a bot response
and a custom action (whose events come back from the action server and are
applied by the processor afterwards) only read the tracker they are given.
For those three, when the prediction attached nothing, the action is given
the tracker itself: what it reads, and so what it sends the action server,
is the same. Forms and Rasa's other built-in actions still get their copy.

Every parsed message is checked against the domain for unknown intents and
entities, unless the domain is empty; that test builds an empty domain and
writes both domains out as dictionaries to compare them, every time (about
2% of the server's CPU). A domain does not change once loaded, so here the
answer is worked out once per domain.

RulePolicy writes out the conversation's states as text on every look for a
rule, only to pass that text to a debug log message (and copies it for the
message). Here the text is only written when debug logging is on.

After a user message RulePolicy looks for a rule twice: first with the
message's text in place of its intent (for rules written with a user's
exact words), then with the intent. A rule can only fit the text look if
its last state is a user turn (after ``action_listen``) that names no
intent: none of ours does, as every rule here is written with intents.
Here the rules are checked for one such once per trained policy, and while
there is none the text look is skipped: it would find nothing, and nothing
it works out on the way is used when it finds nothing.

Before each message Rasa checks whether the conversation's session has
expired: it works out the tracker's applied events (every event, with
rewinds, restarts and loop re-runs undone) once to see that there are any,
and again to find the latest user message's time. Here both come from the
newest events: a tracker whose last event is ``action_listen`` has applied
events, and the latest user message is the last one in its events when
nothing after it rewinds, restarts or re-runs a loop (anything that could
undo it); otherwise Rasa's own way is used.

Usage: ``python -m components.serve run --enable-api ...`` (the ``rasa``
command's arguments).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import operator
import sqlite3
import sys
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import aiohttp
import numpy as np
import scipy.sparse
import ujson
from jsonschema.exceptions import best_match
from jsonschema.validators import validator_for
from rasa.core import run as rasa_run
from rasa.core.actions import action as rasa_action
from rasa.core.actions.action import ActionBotResponse, ActionListen, RemoteAction
from rasa.core.featurizers.tracker_featurizers import TrackerFeaturizer
from rasa.core.policies.rule_policy import RULES, RulePolicy
from rasa.core.processor import MessageProcessor
from rasa.engine.exceptions import GraphRunError
from rasa.engine.graph import GraphSchema
from rasa.engine.runner.dask import DaskGraphRunner
from rasa.nlu.classifiers.logistic_regression_classifier import LogisticRegressionClassifier
from rasa.shared.core.constants import (
    ACTION_LISTEN_NAME,
    PREVIOUS_ACTION,
    SHOULD_NOT_BE_SET,
    USER,
)
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    ActionReverted,
    ActiveLoop,
    Restarted,
    SessionStarted,
    UserUtteranceReverted,
    UserUttered,
)
from rasa.shared.nlu.constants import ACTION_NAME, INTENT, TEXT
from rasa.utils import endpoints as rasa_endpoints
from sqlalchemy import event
from sqlalchemy.engine import Engine

# Seconds an idle connection to an endpoint is kept (Sanic closes at 5).
KEEPALIVE_SECONDS = 2.0


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def install_sqlite_pragmas() -> None:
    """WAL and NORMAL sync for every SQLite connection this process opens."""
    if not event.contains(Engine, "connect", _sqlite_pragmas):
        event.listen(Engine, "connect", _sqlite_pragmas)


def install() -> None:
    """Replaces ``RemoteAction._validate_action_result`` with a compiled-once check."""
    schema = rasa_action.RemoteAction.action_response_format_spec()
    validator_class = validator_for(schema)
    validator_class.check_schema(schema)  # once, at start-up
    validator = validator_class(schema)

    def validate_action_result(_self: Any, result: dict[str, Any]) -> bool:
        error = best_match(validator.iter_errors(result))
        if error is None:
            return True
        error.message += (
            ". Failed to validate Action server response from API, "
            "make sure your response from the Action endpoint is valid."
        )
        raise error

    rasa_action.RemoteAction._validate_action_result = validate_action_result  # type: ignore[method-assign]


class _KeptSession:
    """``async with`` over a long-lived session: entering lends it, leaving keeps it open."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._session = session

    async def __aenter__(self) -> aiohttp.ClientSession:
        return self._session

    async def __aexit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        return None


def _dumps(value: Any) -> str:
    """JSON as ``json.dumps`` writes it for a request body, faster."""
    return ujson.dumps(value, ensure_ascii=False, escape_forward_slashes=False)


def _new_session(endpoint: Any) -> aiohttp.ClientSession:
    """A session configured as ``EndpointConfig.session`` configures one, with kept connections."""
    auth = None
    if endpoint.basic_auth:
        auth = aiohttp.BasicAuth(endpoint.basic_auth["username"], endpoint.basic_auth["password"])
    return aiohttp.ClientSession(
        json_serialize=_dumps,
        headers=endpoint.headers,
        auth=auth,
        timeout=aiohttp.ClientTimeout(total=rasa_endpoints.DEFAULT_REQUEST_TIMEOUT),
        connector=aiohttp.TCPConnector(keepalive_timeout=KEEPALIVE_SECONDS),
    )


def install_kept_sessions() -> None:
    """Makes ``EndpointConfig.session`` lend one session per endpoint and event loop."""

    def session(self: Any) -> _KeptSession:
        loop = asyncio.get_running_loop()
        kept: aiohttp.ClientSession | None = getattr(self, "_kept_session", None)
        if kept is None or kept.closed or getattr(self, "_kept_loop", None) is not loop:
            kept = _new_session(self)
            self._kept_session, self._kept_loop = kept, loop
        return _KeptSession(kept)

    rasa_endpoints.EndpointConfig.session = session  # type: ignore[method-assign]


def sentence_rows(messages: list[Any]) -> Any:
    """The classifier's input matrix: each message's sentence-level text features, joined.

    The CSR matrix ``scipy.sparse.hstack`` and ``vstack`` make of them, built
    directly: SciPy's general block stacking cost more than the classifier.
    Each block is one row with sorted columns (the count vectors featurizer
    sorts them), so the joined row is in canonical order too. None when a
    message has dense features or blocks of another shape (then Rasa's own
    method is used).
    """
    data: list[Any] = []
    indices: list[Any] = []
    indptr = [0]
    width: int | None = None
    for message in messages:
        _, dense = message._filter_dense_features(TEXT, [])
        if dense:
            return None
        _, sparse = message._filter_sparse_features(TEXT, [])
        offset = stored = 0
        for feature in sparse:
            block = feature.features.tocoo()
            if block.shape[0] != 1 or (block.col.size > 1 and np.any(np.diff(block.col) <= 0)):
                return None
            data.append(block.data)
            indices.append(block.col + offset)
            offset += block.shape[1]
            stored += block.data.size
        if width is not None and offset != width:
            return None
        width = offset
        indptr.append(indptr[-1] + stored)
    return scipy.sparse.csr_matrix(
        (
            np.concatenate(data).astype(np.float64) if data else np.zeros(0, np.float64),
            np.concatenate(indices).astype(np.int32) if indices else np.zeros(0, np.int32),
            np.array(indptr, dtype=np.int32),
        ),
        shape=(len(messages), width or 0),
    )


def install_direct_intent_rows() -> None:
    """Builds the intent classifier's input from sentence features alone (same matrix)."""
    original = LogisticRegressionClassifier._create_X

    def create_x(self: Any, messages: list[Any]) -> Any:
        matrix = sentence_rows(messages)
        return original(self, messages) if matrix is None else matrix

    LogisticRegressionClassifier._create_X = create_x  # type: ignore[method-assign]


def install_column_major_intent_weights() -> None:
    """Stores a loaded intent classifier's weights column by column (same values)."""
    original = LogisticRegressionClassifier.load.__func__  # type: ignore[attr-defined]

    def load(cls: Any, *args: Any, **kwargs: Any) -> Any:
        component = original(cls, *args, **kwargs)
        classifier = getattr(component, "clf", None)
        if getattr(classifier, "coef_", None) is not None:
            classifier.coef_ = np.asfortranarray(classifier.coef_)
        return component

    LogisticRegressionClassifier.load = classmethod(load)  # type: ignore[assignment]


def execution_order(schema: GraphSchema, targets: list[str]) -> list[tuple[str, tuple[str, ...]]]:
    """The nodes the targets need, each after the nodes it needs, with what it needs."""
    minimal = schema.minimal_graph_schema(targets)
    order: list[tuple[str, tuple[str, ...]]] = []
    placed: set[str] = set()

    def place(name: str, path: tuple[str, ...]) -> None:
        if name in placed or name not in minimal.nodes:
            return  # done, or an input given to ``run``
        if name in path:
            raise GraphRunError(f"The graph has a cycle through node '{name}'.")
        needs = tuple(minimal.nodes[name].needs.values())
        for need in needs:
            place(need, (*path, name))
        placed.add(name)
        order.append((name, needs))

    for name in minimal.nodes:
        place(name, ())
    return order


def install_sequential_graph_runner() -> None:
    """Runs Rasa's prediction graphs node by node, without dask's per-call scheduling."""
    original_init = DaskGraphRunner.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self._execution_orders = {}

    def run(
        self: Any, inputs: dict[str, Any] | None = None, targets: list[str] | None = None
    ) -> dict[str, Any]:
        run_targets = list(targets) if targets else list(self._graph_schema.target_names)
        key = tuple(run_targets)
        order = self._execution_orders.get(key)
        if order is None:
            order = self._execution_orders[key] = execution_order(self._graph_schema, run_targets)
        nodes = {name for name, _ in order}
        results: dict[str, Any] = {}
        for name, value in (inputs or {}).items():
            if isinstance(value, str) and value in nodes:
                raise GraphRunError(
                    f"Input value '{value}' clashes with a node name. Make sure "
                    f"that none of the input names passed to the `run` method are the "
                    f"same as node names in the graph schema."
                )
            results[name] = (name, value)
        try:
            for name, needs in order:
                # As with dask, a need nothing provides is passed on as its name
                # (the node then reports the missing input).
                results[name] = self._instantiated_nodes[name](
                    *(results.get(need, need) for need in needs)
                )
            return dict(results[target] for target in run_targets)
        except RuntimeError as error:
            raise GraphRunError("Error running runner.") from error

    DaskGraphRunner.__init__ = init  # type: ignore[method-assign]
    DaskGraphRunner.run = run  # type: ignore[method-assign]


def copy_states(states: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """States whose dictionaries (each state and each of its parts) are new.

    Enough for the featurizer, which deletes keys from the parts but never
    changes the values (strings and tuples).
    """
    return [{name: dict(part) for name, part in state.items()} for state in states]


# Events after which a tracker's earlier states may read differently: they
# reset or rewind the history, or (a loop's start or end) change which of
# its earlier loop actions count (``DialogueStateTracker.applied_events``).
_REWRITING_EVENTS = (Restarted, SessionStarted, ActionReverted, UserUtteranceReverted, ActiveLoop)


@dataclass
class _Built:
    """States built for a tracker, and how to go on from them."""

    events: tuple[Any, ...]
    domain: Any
    options: tuple[Any, ...]
    states: list[dict[str, Any]]  # never handed out: callers get copies
    replay: Any  # a tracker replayed through ``events``, to go on from
    loops: frozenset[str]  # the loops named in ``events``


class _KeptStates:
    """The last states built for each recent conversation.

    By conversation: ten conversations in flight take turns between every
    action. Whoever takes an entry owns its replay until it puts one back.
    """

    SIZE = 256
    built: OrderedDict[str, _Built] = OrderedDict()
    lock = threading.Lock()

    @classmethod
    def take(cls, sender_id: str) -> _Built | None:
        with cls.lock:
            return cls.built.pop(sender_id, None)

    @classmethod
    def put(cls, sender_id: str, built: _Built) -> None:
        with cls.lock:
            cls.built[sender_id] = built
            while len(cls.built) > cls.SIZE:
                cls.built.popitem(last=False)


def _state(domain: Any, replay: Any, omit_unset_slots: bool) -> dict[str, Any]:
    return domain._clean_state(domain.get_active_state(replay, omit_unset_slots=omit_unset_slots))


def _build(tracker: Any, domain: Any, events: tuple[Any, ...], options: tuple[Any, ...]) -> _Built:
    """``Domain.states_for_tracker_history`` as RulePolicy asks for it, keeping the replay."""
    omit_unset_slots = options[0]
    replay = tracker.init_copy()
    states = []
    for applied in tracker.applied_events():
        if isinstance(applied, ActionExecuted):
            states.append(_state(domain, replay, omit_unset_slots))
        replay.update(applied)
    states.append(_state(domain, replay, omit_unset_slots))
    loops = frozenset(e.name for e in events if isinstance(e, ActiveLoop) and e.name)
    return _Built(events, domain, options, states, replay, loops)


def _extend(kept: _Built, events: tuple[Any, ...]) -> _Built | None:
    """The states of ``kept``'s events followed by ``events``' new ones, or None.

    None unless the new events only add to the history: none of them rewrites
    it (``_REWRITING_EVENTS``) or runs a loop (whose run may undo earlier loop
    runs). Then the applied events are the kept ones followed by the new, and
    the replay goes on from where it stopped.
    """
    new = events[len(kept.events) :]
    for added in new:
        if isinstance(added, _REWRITING_EVENTS) or (
            isinstance(added, ActionExecuted) and added.action_name in kept.loops
        ):
            return None
    omit_unset_slots = kept.options[0]
    replay, states = kept.replay, kept.states[:-1]
    for added in new:
        if isinstance(added, ActionExecuted):
            states.append(_state(kept.domain, replay, omit_unset_slots))
        replay.update(added)
    states.append(_state(kept.domain, replay, omit_unset_slots))
    return _Built(events, kept.domain, kept.options, states, replay, kept.loops)


def install_shared_prediction_states() -> None:
    """Builds a tracker's states once for the same events, and goes on from them for more."""
    original = TrackerFeaturizer._create_states  # a static method

    def create_states(
        tracker: Any,
        domain: Any,
        omit_unset_slots: bool = False,
        ignore_rule_only_turns: bool = False,
        rule_only_data: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        if ignore_rule_only_turns:  # not RulePolicy's way: Rasa's own, every time
            return original(
                tracker,
                domain,
                omit_unset_slots=omit_unset_slots,
                ignore_rule_only_turns=ignore_rule_only_turns,
                rule_only_data=rule_only_data,
            )
        events = tuple(tracker.events)
        # RulePolicy passes a new, equal dictionary of rule-only data each time.
        options = (omit_unset_slots, rule_only_data)
        kept = _KeptStates.take(tracker.sender_id)
        built = None
        if (
            kept is not None
            and kept.domain is domain
            and kept.options == options
            and len(kept.events) <= len(events)
            and all(map(operator.is_, kept.events, events))
        ):
            built = kept if len(kept.events) == len(events) else _extend(kept, events)
        if built is None:
            built = _build(tracker, domain, events, options)
        _KeptStates.put(tracker.sender_id, built)
        return copy_states(built.states)

    TrackerFeaturizer._create_states = staticmethod(create_states)  # type: ignore[method-assign,assignment]


def install_fast_rule_lookup() -> None:
    """``RulePolicy._get_possible_keys``, the same keys with less work (see the module notes)."""
    reversed_states: dict[str, list[dict[str, Any]]] = {}

    def get_possible_keys(self: Any, lookup: dict[str, str], states: list[Any]) -> set[str]:
        possible = []
        for key in lookup:
            rule = reversed_states.get(key)
            if rule is None:
                rule = reversed_states[key] = list(reversed(self._rule_key_to_state(key)))
            possible.append((key, rule))
        for index, state in enumerate(reversed(states)):
            if all(index >= len(rule) for _, rule in possible):
                break  # every remaining rule fits whatever came before
            current_previous_action = state.get(PREVIOUS_ACTION)
            fitting = []
            for key, rule in possible:
                if index >= len(rule):
                    fitting.append((key, rule))
                    continue
                rule_previous_action = rule[index].get(PREVIOUS_ACTION)
                if (
                    not rule_previous_action
                    and not current_previous_action
                    or (
                        rule_previous_action
                        and current_previous_action
                        and self._does_rule_match_state(rule[index], state)
                    )
                ):
                    fitting.append((key, rule))
            possible = fitting
        return {key for key, _ in possible}

    RulePolicy._get_possible_keys = get_possible_keys  # type: ignore[method-assign]


# Where a domain keeps whether it is empty (install_once_per_domain_emptiness).
EMPTINESS = "_consular_is_empty"

# Actions that only read the tracker they are run with (by exact type:
# subclasses such as forms may change it).
READING_ACTIONS = (ActionListen, ActionBotResponse, RemoteAction)


def install_uncopied_tracker_for_reading_actions() -> None:
    """Runs a reading action on the tracker itself when the prediction added no events."""
    original = MessageProcessor._run_action

    async def run_action(
        self: Any, action: Any, tracker: Any, output_channel: Any, nlg: Any, prediction: Any
    ) -> bool:
        if prediction.events or type(action) not in READING_ACTIONS:
            return await original(self, action, tracker, output_channel, nlg, prediction)

        # The processor's first step is ``tracker.copy()``: that one call
        # gets the tracker itself, and every later call a real copy again.
        def itself() -> Any:
            del tracker.copy
            return tracker

        tracker.copy = itself
        try:
            return await original(self, action, tracker, output_channel, nlg, prediction)
        finally:
            vars(tracker).pop("copy", None)

    MessageProcessor._run_action = run_action  # type: ignore[method-assign]


def install_once_per_domain_emptiness() -> None:
    """``Domain.is_empty`` worked out once for each domain object."""
    original = Domain.is_empty

    def is_empty(self: Domain) -> bool:
        # Kept on the object itself: a domain's hash is a fingerprint of its
        # whole content, too dear to look it up by.
        answer = vars(self).get(EMPTINESS)
        if answer is None:
            answer = vars(self)[EMPTINESS] = original(self)
        return answer

    Domain.is_empty = is_empty  # type: ignore[method-assign]


def install_states_text_for_debug_only() -> None:
    """RulePolicy's states as text (only ever logged) only when debug logging is on."""
    original = RulePolicy.format_tracker_states  # a static method
    logger = logging.getLogger(RulePolicy.__module__)

    def format_tracker_states(states: list[dict[str, Any]]) -> str:
        if logger.isEnabledFor(logging.DEBUG):
            return original(states)
        return "(with debug logging)"

    RulePolicy.format_tracker_states = staticmethod(format_tracker_states)  # type: ignore[method-assign,assignment]


def could_fit_text(rule_states: list[dict[str, Any]]) -> bool:
    """Whether a rule could fit the states RulePolicy's text look sees (see the module notes).

    That look is only made straight after ``action_listen``, and the user
    part of its last state carries the message's text and no intent. A rule
    fits only if its last state has a previous action (the look's last
    state has one) matching ``action_listen``, and no intent its user part
    must have. Anything else counts as a possible fit.
    """
    if not rule_states:
        return True
    last = rule_states[-1]
    previous = last.get(PREVIOUS_ACTION)
    if not previous:
        return False  # a conversation start; the look's last state is not one
    name = previous.get(ACTION_NAME)
    if name and name != SHOULD_NOT_BE_SET and name != ACTION_LISTEN_NAME:
        return False
    intent = last.get(USER, {}).get(INTENT)
    return not (intent and intent != SHOULD_NOT_BE_SET)


# Where a policy keeps whether any of its rules could fit the text look, and
# for which table of rules that was worked out.
TEXT_RULES = "_consular_text_rules"


def install_text_look_only_with_text_rules() -> None:
    """Skips RulePolicy's look for a rule by the message's text when no rule could fit it."""
    original = RulePolicy._find_action_from_rules

    def find_action_from_rules(
        self: Any, tracker: Any, domain: Any, use_text_for_last_user_input: bool
    ) -> tuple[str | None, str | None, bool]:
        if use_text_for_last_user_input:
            rules = self.lookup.get(RULES, {})
            known = getattr(self, TEXT_RULES, None)
            if known is None or known[0] is not rules:
                possible = any(could_fit_text(self._rule_key_to_state(key)) for key in rules)
                known = (rules, possible)
                setattr(self, TEXT_RULES, known)
            if not known[1]:
                return None, None, False
        return original(self, tracker, domain, use_text_for_last_user_input)

    RulePolicy._find_action_from_rules = find_action_from_rules  # type: ignore[method-assign]


# Events that may undo earlier ones in ``DialogueStateTracker.applied_events``.
_UNDOING_EVENTS = (Restarted, SessionStarted, ActionReverted, UserUtteranceReverted)


def latest_applied_user_message(tracker: Any) -> Any:
    """``tracker.get_last_event_for(UserUttered)``, from the newest events when it safely can."""
    events = tracker.events
    loops = None
    for index in range(len(events) - 1, -1, -1):
        event = events[index]
        if isinstance(event, UserUttered):
            return event
        if isinstance(event, _UNDOING_EVENTS):
            break
        if isinstance(event, ActionExecuted) and event.action_name != ACTION_LISTEN_NAME:
            if loops is None:
                loops = {e.name for e in events if isinstance(e, ActiveLoop) and e.name}
            if event.action_name in loops:
                break  # a loop run again may undo what came before it
    return tracker.get_last_event_for(UserUttered)


def has_applied_events(tracker: Any) -> bool:
    """``bool(tracker.applied_events())``: surely so when the last event is ``action_listen``."""
    events = tracker.events
    if events:
        last = events[-1]
        if type(last) is ActionExecuted and last.action_name == ACTION_LISTEN_NAME:
            return True  # appended last, whatever came before
    return bool(tracker.applied_events())


def install_quick_session_check() -> None:
    """Rasa's session expiry check, from the newest events (see the module notes)."""
    original = MessageProcessor._update_tracker_session

    async def update_tracker_session(
        self: Any, tracker: Any, output_channel: Any, metadata: Any = None
    ) -> None:
        if has_applied_events(tracker) and not session_has_expired(self, tracker):
            return None
        return await original(self, tracker, output_channel, metadata)

    MessageProcessor._update_tracker_session = update_tracker_session  # type: ignore[method-assign]


def session_has_expired(processor: Any, tracker: Any) -> bool:
    """``MessageProcessor._has_session_expired``, finding the latest user message quickly."""
    config = processor.domain.session_config
    if not config.are_sessions_enabled():
        return False
    latest = latest_applied_user_message(tracker)
    if latest is None:
        return False
    return (time.time() - latest.timestamp) / 60 > config.session_expiration_time


def install_frozen_startup_heap() -> None:
    """Once the model is loaded, freezes every object then alive (see the module notes)."""
    original = rasa_run.load_agent_on_start

    async def load_agent_on_start(*args: Any, **kwargs: Any) -> Any:
        agent = await original(*args, **kwargs)
        gc.collect()
        gc.freeze()
        logging.getLogger(__name__).info(
            "Froze %d objects alive after loading the model.", gc.get_freeze_count()
        )
        return agent

    rasa_run.load_agent_on_start = load_agent_on_start


def main() -> None:
    """Runs the ``rasa`` command line with the changes above installed."""
    install()
    install_sqlite_pragmas()
    install_kept_sessions()
    install_column_major_intent_weights()
    install_sequential_graph_runner()
    install_direct_intent_rows()
    install_shared_prediction_states()
    install_fast_rule_lookup()
    install_uncopied_tracker_for_reading_actions()
    install_once_per_domain_emptiness()
    install_states_text_for_debug_only()
    install_text_look_only_with_text_rules()
    install_quick_session_check()
    install_frozen_startup_heap()
    from rasa.__main__ import main as rasa_main

    sys.argv[0] = "rasa"
    rasa_main()


if __name__ == "__main__":
    main()
