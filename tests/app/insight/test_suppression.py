"""Small-cell suppression: primary, secondary and two-way rules."""

from __future__ import annotations

import pytest

from bot.insight import suppression


@pytest.mark.parametrize(
    ("counts", "hidden"),
    [
        # Nothing small: nothing hidden; zero describes nobody and is shown.
        ([12, 7, 0], [False, False, False]),
        # One small cell: the total minus the rest would give it away, so the
        # smallest other cell goes too.
        ([12, 7, 3], [False, True, True]),
        # Two small cells adding up to 5 or more need no third.
        ([12, 3, 4], [False, True, True]),
        # Two small cells adding up to 3: the smallest shown one joins them.
        ([12, 6, 2, 1], [False, True, True, True]),
        # Zeros are never used to cover: only a cell with conversations in it.
        ([9, 0, 2], [True, False, True]),
        # Ties go to the first in the table's order.
        ([8, 8, 2], [True, False, True]),
    ],
)
def test_protect_one_line(counts: list[int], hidden: list[bool]) -> None:
    assert suppression.protect(counts) == hidden


def test_what_is_hidden_adds_up_to_five_or_more_or_nothing() -> None:
    for counts in ([1, 1, 1, 1, 50], [4, 0, 0, 9], [2, 2, 2], [1, 30, 30, 30]):
        mask = suppression.protect(counts)
        total_hidden = sum(c for c, off in zip(counts, mask, strict=True) if off)
        assert total_hidden == 0 or total_hidden >= suppression.THRESHOLD
        assert all(off for c, off in zip(counts, mask, strict=True) if 0 < c < 5)


def test_protect_grid_covers_rows_and_columns() -> None:
    # Row 2's 1 hides its 4; the first column then holds a hidden 4 alone,
    # so its 6 is hidden as well.
    grid = [[6, 0], [4, 1]]
    assert suppression.protect_grid(grid) == [[True, False], [True, True]]


@pytest.mark.parametrize(
    ("numerator", "denominator", "hidden"),
    [
        (10, 20, False),
        (0, 20, False),  # nobody: shown
        (20, 20, False),  # everybody: shown
        (3, 20, True),  # 15% of 20 is 3 people
        (17, 20, True),  # its complement is 3 people
        (2, 4, True),  # a group of fewer than 5
    ],
)
def test_shares_that_would_reveal_a_small_count(
    numerator: int, denominator: int, hidden: bool
) -> None:
    assert suppression.share_hidden(numerator, denominator) is hidden
