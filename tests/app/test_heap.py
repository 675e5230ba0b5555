"""bot/core/heap.py: the start-up heap is frozen once per process."""

from __future__ import annotations

import gc

import pytest

from bot.core import heap


def test_the_first_start_freezes_what_is_alive_and_later_ones_do_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(heap._Frozen, "done", False)
    before = gc.get_freeze_count()
    try:
        assert heap.freeze_startup_heap() is True
        frozen = gc.get_freeze_count()
        assert frozen > before + 1000
        kept = [object() for _ in range(100)]
        # A second app in the same process (as in the tests) freezes nothing more.
        assert heap.freeze_startup_heap() is False
        assert gc.get_freeze_count() == frozen
        del kept
    finally:
        gc.unfreeze()
