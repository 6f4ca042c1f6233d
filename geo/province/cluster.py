"""A Dask cluster to run streets on: an existing one by address, or local worker processes.

The same code path serves one laptop and many machines: ``connect(cluster="tcp://host:8786")``
joins a running ``dask scheduler`` (its workers need gridmap installed), ``connect(workers=N)``
starts N local worker processes of one thread each (a street is single-threaded numpy, numba and
GEOS work; processes, not threads, sidestep the GIL and keep each street's memory apart). Every
worker is capped at ``memory_limit`` (Dask restarts a worker that goes over, and its streets are
re-run elsewhere). ``distributed`` is imported here only, when a province run starts.

Examples
--------
>>> from geo.province.cluster import connect  # doctest: +SKIP
>>> with connect(workers=2) as client:  # doctest: +SKIP
...     print(len(client.scheduler_info()["workers"]))
2
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from geo.errors import InputError

if TYPE_CHECKING:
    from dask.distributed import Client

#: each worker's cap; a street needs about 0.7 GB (docs/benchmarks.md)
MEMORY_LIMIT = "2GB"
#: libraries that would start a thread per core inside each single-threaded worker
_ONE_THREAD = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


@contextmanager
def connect(
    *, cluster: str | None = None, workers: int | None = None, memory_limit: str = MEMORY_LIMIT
) -> Iterator[Client]:
    """A client on the cluster at ``cluster``, or on a local cluster of ``workers`` processes.

    Exactly one of ``cluster`` and ``workers`` is given. The local cluster and the client are
    closed on leaving the block, also when the run is interrupted.
    """
    if (cluster is None) == (workers is None):
        raise InputError(
            "give either --cluster tcp://scheduler:8786 or --workers N, not both",
            zh="请给出 --cluster tcp://调度器:8786 或 --workers N 其中之一",
        )
    from dask.distributed import Client

    if cluster is not None:
        with Client(cluster, timeout="30s") as client:
            yield client
        return
    if workers < 1:
        raise InputError(f"--workers must be >= 1, not {workers}", zh="--workers 至少为 1")
    with _local_cluster(workers, memory_limit) as local, Client(local) as client:
        yield client


@contextmanager
def _local_cluster(workers: int, memory_limit: str) -> Iterator[object]:
    """``workers`` local processes of one thread each, without a dashboard."""
    from dask.distributed import LocalCluster

    with LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        memory_limit=memory_limit,
        dashboard_address=None,
        silence_logs=40,  # errors only: the progress bar is the run's voice
        env={name: os.environ.get(name, "1") for name in _ONE_THREAD},  # the nannies' children
    ) as local:
        yield local


def worker_count(client: Client) -> int:
    """The workers the scheduler knows now."""
    return len(client.scheduler_info()["workers"])
