"""Fewer garbage collections while a district is imported or partitioned.

A street's import makes shapely geometries and pandas objects by the hundred thousand. CPython
collects its youngest generation after every 700 allocations not yet freed, and the older
generations every 10 of those, each time walking every tracked object of the generation: 12 %
of a province street's CPU went to it (7 streets in one process, 13.5 s against 11.8 s of CPU,
run twice), 4 % of ``gridmap import`` of Suzhou. Almost nothing these steps make is cyclic, and
reference counting frees the rest at once, so collecting rarely keeps the memory where it was.

:func:`fewer_collections` raises the thresholds for a block and puts them back after it. The
thresholds are the process's, so it is for the steps that own their process (a command, a
Dask worker's street), not for a server's request threads.

Examples
--------
>>> import gc
>>> before = gc.get_threshold()
>>> with fewer_collections():
...     gc.get_threshold()[0] > before[0]
True
>>> gc.get_threshold() == before
True
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["THRESHOLDS", "fewer_collections"]

#: the thresholds inside the block: a young collection every 50,000 allocations, and an old one
#: every 20 x 100 of those
THRESHOLDS = (50_000, 20, 100)
_lock = threading.Lock()
_depth = 0
_saved: tuple[int, ...] = gc.get_threshold()


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Raise the collector's thresholds to :data:`THRESHOLDS` for the block (nested blocks and
    blocks on other threads share one raise; the last to leave restores the thresholds)."""
    global _depth, _saved
    with _lock:
        if _depth == 0:
            _saved = gc.get_threshold()
            gc.set_threshold(*THRESHOLDS)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                gc.set_threshold(*_saved)
