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

__all__ = ["THREADS_VARIABLE", "cores", "worker_pool"]


#: threads this process's pool may run, where it shares its cores with other processes: a Dask
#: worker of one thread (:mod:`geo.province.cluster`) sets it to 1, so that two workers on two
#: cores run two threads, not four
THREADS_VARIABLE = "GRIDMAP_THREADS"


def cores() -> int:
    """CPU cores this process may use (:data:`THREADS_VARIABLE` when set to a positive number)."""
    given = os.environ.get(THREADS_VARIABLE, "").strip()
    if given.isdigit() and int(given) > 0:
        return int(given)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@cache
def worker_pool() -> ThreadPoolExecutor:
    """The process's pool of ``cores()`` worker threads."""
    return ThreadPoolExecutor(max_workers=cores(), thread_name_prefix="gridmap-worker")
