"""Keeping the start-up heap out of the garbage collector's full collections.

Python's cyclic collector walks every live object in a full collection. After
start-up most of them (modules, the app, its routes and templates, SQLAlchemy's
mappers) live as long as the process, yet each full collection walked them
again: measured under load, a pause of over 0.1 s in which no request was
served. ``gc.freeze`` moves everything alive at that point out of the
collector's sight; later collections walk only what was made since.
"""

from __future__ import annotations

import gc


class _Frozen:
    done = False


def freeze_startup_heap() -> bool:
    """Freezes what is alive now, once per process; returns whether it did.

    Once: a process that builds several apps (the tests) would otherwise
    keep each one's garbage for good.
    """
    if _Frozen.done:
        return False
    gc.collect()
    gc.freeze()
    _Frozen.done = True
    return True
