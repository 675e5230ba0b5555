"""The identity check for case status (SERVICE_CATALOGUE.md, "Identity check")."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session, sessionmaker

from bot.cases.identity import normalise_reference, normalise_surname
from bot.cases.verify import LockPolicy, Outcome, verify_case
from bot.db.base import Base
from bot.db.models import AuditEvent
from bot.db.session import session_scope
from bot.importer import import_rows
from tests.app.conftest import INTERNAL_TOKEN

KEY = "test-case-key"
AUTH = {"X-Internal-Token": INTERNAL_TOKEN}
CASE = {
    "reference": "CON-2026-004512",
    "case_type": "lost-stolen-passport",
    "status": "Document approved",
    "next_step": "Collect it in Malaga",
    "surname": "O'Neill-Smith",
    "date_of_birth": "1985-03-14",
}
RIGHT = {"reference": "CON-2026-004512", "surname": "O'Neill-Smith", "date_of_birth": "1985-03-14"}


def add_case(session_factory: sessionmaker[Session], key: str = KEY) -> None:
    with session_scope(session_factory) as session:
        report = import_rows(session=session, kind="cases", rows=[CASE], case_key=key)
        assert report.ok


@pytest.fixture
def with_case(session_factory: sessionmaker[Session], settings) -> None:
    add_case(session_factory, settings.case_fact_key)


def lookup(client: TestClient, **facts: str):
    response = client.post("/api/internal/cases/verify", json=facts, headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()


def test_right_facts_disclose_status_and_next_step_only(client: TestClient, with_case) -> None:
    body = lookup(client, **RIGHT)
    assert body["outcome"] == "verified"
    assert set(body["case"]) == {"reference", "status", "next_step", "updated_at"}
    assert (body["case"]["status"], body["case"]["next_step"]) == (
        "Document approved",
        "Collect it in Malaga",
    )


def test_facts_match_however_they_are_typed(client: TestClient, with_case) -> None:
    body = lookup(
        client, reference="con 2026 004512", surname="  o'neill smith ", date_of_birth="1985-03-14"
    )
    assert body["outcome"] == "verified"


@pytest.mark.parametrize(
    "wrong",
    [
        {"reference": "CON-2026-999999"},
        {"surname": "Smith"},
        {"date_of_birth": "1985-03-15"},
        {"reference": "not a reference at all"},
    ],
    ids=["unknown-reference", "wrong-surname", "wrong-birth-date", "garbage-reference"],
)
def test_every_mismatch_gets_the_same_answer(
    client: TestClient, with_case, wrong: dict[str, str]
) -> None:
    assert lookup(client, **{**RIGHT, **wrong}) == {
        "outcome": "not_verified",
        "case": None,
        "locked_minutes": None,
    }


def test_third_failure_locks_and_is_audited(
    client: TestClient, with_case, session_factory: sessionmaker[Session]
) -> None:
    wrong = {**RIGHT, "surname": "Smith"}
    assert lookup(client, **wrong)["outcome"] == "not_verified"
    assert lookup(client, **wrong)["outcome"] == "not_verified"
    assert lookup(client, **wrong) == {"outcome": "locked", "case": None, "locked_minutes": 15}
    # Locked means locked: even the right facts are refused for now.
    assert lookup(client, **RIGHT)["outcome"] == "locked"
    with session_factory() as session:
        [event] = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "case.lookup.locked")
        ).all()
    assert event.subject == "CON-2026-004512"
    assert "Smith" not in str(event.details)


def test_unknown_reference_locks_the_same_way(client: TestClient, with_case) -> None:
    unknown = {**RIGHT, "reference": "CON-2026-000001"}
    outcomes = [lookup(client, **unknown)["outcome"] for _ in range(4)]
    assert outcomes == ["not_verified", "not_verified", "locked", "locked"]


def test_lock_expires_after_fifteen_minutes(session_factory: sessionmaker[Session]) -> None:
    add_case(session_factory)
    start = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    wrong = {"reference": "CON-2026-004512", "surname": "Smith", "born": date(1985, 3, 14)}
    with session_scope(session_factory) as session:
        results = [
            verify_case(session=session, key=KEY, now=start, **wrong).outcome for _ in range(3)
        ]
        assert results[-1] == Outcome.LOCKED
        later = start + timedelta(minutes=14)
        still = verify_case(
            session=session,
            key=KEY,
            reference="CON-2026-004512",
            surname="O'Neill-Smith",
            born=date(1985, 3, 14),
            now=later,
        )
        after = verify_case(
            session=session,
            key=KEY,
            reference="CON-2026-004512",
            surname="O'Neill-Smith",
            born=date(1985, 3, 14),
            now=start + timedelta(minutes=16),
        )
    assert (still.outcome, after.outcome) == (Outcome.LOCKED, Outcome.VERIFIED)


def test_success_resets_the_failure_count(session_factory: sessionmaker[Session]) -> None:
    add_case(session_factory)
    right = {"reference": "CON-2026-004512", "surname": "O'Neill-Smith", "born": date(1985, 3, 14)}
    wrong = {**right, "surname": "Smith"}
    with session_scope(session_factory) as session:
        seq = [
            verify_case(session=session, key=KEY, **facts).outcome
            for facts in (wrong, wrong, right, wrong, wrong)
        ]
    assert seq[2] == Outcome.VERIFIED and Outcome.LOCKED not in seq


def test_bad_lookup_bodies_are_422(client: TestClient) -> None:
    for body in ({}, {**RIGHT, "date_of_birth": "14th March"}, {**RIGHT, "surname": ""}):
        response = client.post("/api/internal/cases/verify", json=body, headers=AUTH)
        assert response.status_code == 422


# -- no input reveals whether a reference exists ------------------------------

facts = st.fixed_dictionaries(
    {
        "reference": st.one_of(
            st.just("CON-2026-004512"),
            st.just("con 2026 004512"),
            st.from_regex(r"CON-20[0-9]{2}-[0-9]{6}", fullmatch=True),
            st.text(min_size=1, max_size=30),
        ),
        "surname": st.one_of(st.just("O'Neill-Smith"), st.text(min_size=1, max_size=30)),
        "born": st.one_of(
            st.just(date(1985, 3, 14)),
            st.dates(min_value=date(1900, 1, 1), max_value=date(2026, 11, 23)),
        ),
    }
)


def _fresh_factory(path: Path) -> sessionmaker[Session]:
    engine = create_engine(f"sqlite:///{path}")
    Base.metadata.create_all(engine)
    return sessionmaker(engine, expire_on_commit=False)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(attempts=st.lists(facts, min_size=1, max_size=5))
def test_no_input_reveals_whether_a_reference_exists(
    tmp_path_factory: pytest.TempPathFactory, attempts: list[dict]
) -> None:
    """The same wrong attempts give the same outcomes whether or not the case exists."""
    folder = tmp_path_factory.mktemp("prop")
    with_case, without_case = _fresh_factory(folder / "a.db"), _fresh_factory(folder / "b.db")
    add_case(with_case)
    right = (normalise_surname(CASE["surname"]), date.fromisoformat(CASE["date_of_birth"]))
    outcomes = []
    for factory in (with_case, without_case):
        seen = []
        with session_scope(factory) as session:
            for attempt in attempts:
                is_right = (normalise_surname(attempt["surname"]), attempt["born"]) == right
                if is_right and normalise_reference(attempt["reference"]) == CASE["reference"]:
                    continue  # knowing every fact is not probing
                result = verify_case(session=session, key=KEY, policy=LockPolicy(), **attempt)
                seen.append((result.outcome, result.case, result.locked_minutes))
        outcomes.append(seen)
    assert outcomes[0] == outcomes[1]
    assert all(outcome != Outcome.VERIFIED for outcome, _, _ in outcomes[0])
