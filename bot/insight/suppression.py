"""Small-cell suppression: no figure on the dashboard describes fewer than 5 conversations.

Rules, applied to every table before it is shown or exported:

1. Primary: a count of 1 to 4 conversations is hidden ("fewer than 5").
   Zero is shown: it describes nobody.
2. Anything computed from a group of fewer than 5 conversations (a share, a
   median) is hidden with it. A share is also hidden when its numerator or
   its complement is 1 to 4, as the share times the group's size would give
   that count back. A 95th percentile needs 20 values (below that it is the
   largest value, one conversation's own time) and is hidden otherwise.
3. Secondary: a table's total is shown, so one hidden cell could be worked
   out as the total minus the cells shown. In every line of cells that adds
   up to a shown total (a column of a table, or a row of a breakdown), while
   the hidden cells add up to between 1 and 4 conversations the smallest
   cell still shown is hidden too. So what can be worked out from any total
   is the sum of at least two hidden cells, and that sum is 5 or more.

Message counts are cells about conversations (the messages of a few
conversations describe those conversations), so they are hidden by the
number of conversations behind them, never by their own size.

What suppression cannot stop is differencing between two views (the same
figure with and without a filter). Filters are coarse (country, topic,
channel, whole days), and the totals of the two views pass the same rules,
but a determined reader with many views could still narrow a small group:
this dashboard is for staff, and the CSV files carry the same protection.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

THRESHOLD: Final = 5
P95_MINIMUM: Final = 20
SUPPRESSED: Final = "fewer than 5"


def hidden(count: int) -> bool:
    """A primary-suppressed count: 1 to 4 conversations."""
    return 0 < count < THRESHOLD


def share_hidden(numerator: int, denominator: int) -> bool:
    """A share that would reveal a count of 1 to 4 (or rests on fewer than 5)."""
    return denominator < THRESHOLD or hidden(numerator) or hidden(denominator - numerator)


def protect(counts: Sequence[int], hidden_already: Sequence[bool] | None = None) -> list[bool]:
    """Which cells of one line that adds up to a shown total must be hidden.

    ``counts`` are the cells' conversation counts; ``hidden_already`` marks
    cells hidden for other reasons (defaults to the primary rule).
    """
    mask = list(hidden_already) if hidden_already is not None else [hidden(c) for c in counts]
    while True:
        total_hidden = sum(count for count, off in zip(counts, mask, strict=True) if off)
        if not 0 < total_hidden < THRESHOLD:
            return mask
        shown = [
            (count, index)
            for index, (count, off) in enumerate(zip(counts, mask, strict=True))
            if not off and count > 0
        ]
        if not shown:
            return mask
        mask[min(shown)[1]] = True


def protect_grid(grid: Sequence[Sequence[int]]) -> list[list[bool]]:
    """Hidden cells of a table whose row and column totals are both shown.

    Applies :func:`protect` to every row and every column until nothing
    changes, so no hidden cell can be worked out from either total.
    """
    mask = [[hidden(count) for count in row] for row in grid]
    changed = True
    while changed:
        changed = False
        for r, row in enumerate(grid):
            new = protect(row, mask[r])
            if new != mask[r]:
                mask[r], changed = new, True
        for c in range(len(grid[0]) if grid else 0):
            column = [row[c] for row in grid]
            new = protect(column, [mask[r][c] for r in range(len(grid))])
            for r, off in enumerate(new):
                if off != mask[r][c]:
                    mask[r][c], changed = off, True
    return mask
