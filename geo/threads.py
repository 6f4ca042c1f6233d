"""One pool of worker threads for the steps that release the GIL.

Qhull (the Delaunay triangulations of :mod:`geo.grids.adjacency`) and the compiled pair search of
:mod:`geo.grids.regroup` run without the GIL, so independent pieces of work (communities, units) go to
one thread per core. The pool is made once per process: starting threads for every call cost
more than the work on small districts. Tasks never wait on other tasks, so callers on several
threads (the API) can share it.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from functools import cache

__all__ = ["cores", "worker_pool"]


def cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@cache
def worker_pool() -> ThreadPoolExecutor:
    """The process's pool of ``cores()`` worker threads."""
    return ThreadPoolExecutor(max_workers=cores(), thread_name_prefix="gridmap-worker")
