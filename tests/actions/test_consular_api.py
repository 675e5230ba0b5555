"""actions/consular_api.py: the internal API client keeps its connections."""

from __future__ import annotations

import asyncio

from actions import consular_api
from tests.actions.conftest import FakeInternalApi


def test_lookups_in_one_loop_share_a_connection(internal_api: FakeInternalApi) -> None:
    async def three_lookups() -> None:
        await consular_api.get_guidance("lost-stolen-passport", "ES")
        await consular_api.get_posts("ES")
        await consular_api.get_travel_advice("TH")

    asyncio.run(three_lookups())
    peers = [request["peer"] for request in internal_api.requests]
    assert len(peers) == 3 and peers[0] is not None
    # One connection, kept open between calls: not one set up per lookup.
    assert len(set(peers)) == 1


def test_a_new_event_loop_gets_a_working_session(internal_api: FakeInternalApi) -> None:
    # The action server runs one loop; a session is never used across loops
    # (tests run many), where it would fail.
    for _ in range(2):
        guidance = asyncio.run(consular_api.get_guidance("lost-stolen-passport"))
        assert guidance.topic == "lost-stolen-passport"
    assert len(internal_api.requests) == 2
