"""bench/run.py part 4: both sides get the same load, in alternating blocks."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from bench.run import Side, block_order, side_by_side


def test_blocks_alternate_so_a_steady_drift_favours_neither_side() -> None:
    assert block_order(["ours", "stock"], 4) == [
        ["ours", "stock"],
        ["stock", "ours"],
        ["ours", "stock"],
        ["stock", "ours"],
    ]


def test_each_side_gets_the_whole_load_in_turns() -> None:
    calls: list[tuple[str, str | None]] = []

    def sender(name: str) -> Any:
        async def send(context: Any, text: str | None) -> Any:
            calls.append((name, text))
            await asyncio.sleep(0)
            return context or name

        return send

    sides = [
        Side("ours", sender("ours"), ["a", "b"], {"app": os.getpid()}),
        Side("stock", sender("stock"), ["x"], {"rasa": os.getpid()}),
    ]
    results = asyncio.run(side_by_side(sides, blocks=2))

    for name in ("ours", "stock"):
        assert results[name]["1_conversation"]["messages"] == 100
        assert results[name]["10_conversations"]["messages"] == 300
        assert set(results[name]["cpu_ms_per_message"]) == set(
            sides[0 if name == "ours" else 1].pids
        )
        # This process's own time, counted over the ten-conversation blocks.
        assert results[name]["load_generator_cpu_ms_per_message"] >= 0
    # One conversation, then ten, per side, each going on across blocks
    # (a new conversation starts with a None context).
    assert [name for name, text in calls if text is None] == ["ours"] * 2 + ["stock"] * 2 + [
        "ours"
    ] + ["stock"] + ["ours"] * 10 + ["stock"] * 10
    # Messages come from each side's own list.
    assert {text for name, text in calls if name == "ours"} == {None, "a", "b"}
    assert {text for name, text in calls if name == "stock"} == {None, "x"}
    # Turns, not one side then the other: warm-up (ours, stock), then the
    # one-conversation blocks (ours, stock | stock, ours), then the
    # ten-conversation ones (ours, stock | stock, ours).
    runs = [calls[0][0]]
    for name, _ in calls[1:]:
        if name != runs[-1]:
            runs.append(name)
    assert runs == ["ours", "stock", "ours", "stock", "ours", "stock", "ours"]
