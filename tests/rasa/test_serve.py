"""components.serve: the action server's replies are checked as strictly as Rasa does."""

from __future__ import annotations

from typing import Any

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
