"""``rasa run`` with the action server's replies checked against a schema compiled once.

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

Usage: ``python -m components.serve run --enable-api ...`` (the ``rasa``
command's arguments).
"""

from __future__ import annotations

import sqlite3
import sys
from typing import Any

from jsonschema.exceptions import best_match
from jsonschema.validators import validator_for
from rasa.core.actions import action as rasa_action
from sqlalchemy import event
from sqlalchemy.engine import Engine


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


def main() -> None:
    """Runs the ``rasa`` command line with the check installed."""
    install()
    install_sqlite_pragmas()
    from rasa.__main__ import main as rasa_main

    sys.argv[0] = "rasa"
    rasa_main()


if __name__ == "__main__":
    main()
