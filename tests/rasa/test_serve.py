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
