"""A Dask cluster to run streets or communities on: an existing one by address, or local processes.

The same code path serves one laptop and many machines: ``connect(cluster="tcp://host:8786")``
joins a running ``dask scheduler`` (its workers need gridmap installed), ``connect(workers=N)``
starts N local worker processes of one thread each (a street is single-threaded numpy, numba and
GEOS work; processes, not threads, sidestep the GIL and keep each street's memory apart). Every
worker is capped at ``memory_limit`` (Dask restarts a worker that goes over, and its streets are
re-run elsewhere). ``distributed`` is imported here only, when a run on a cluster starts.

``gridmap import`` and ``gridmap partition`` take the same options: :func:`mapping` gives them a
*mapper*, ``mapper(func, *iterables) -> list``, that runs one call per community on the cluster
(``client.map`` then ``client.gather``, results in order), or None without the options, which
leaves the one-process path as it was and imports no Dask.

Examples
--------
>>> from geo.province.cluster import connect  # doctest: +SKIP
>>> with connect(workers=2) as client:  # doctest: +SKIP
...     print(len(client.scheduler_info()["workers"]))
2
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from geo.errors import InputError
from geo.threads import THREADS_VARIABLE

if TYPE_CHECKING:
    from dask.distributed import Client

#: each worker's cap; a street needs about 0.7 GB (docs/benchmarks.md)
MEMORY_LIMIT = "2GB"
#: libraries (and gridmap's own pool, :data:`geo.threads.THREADS_VARIABLE`) that would start a
#: thread per core inside each single-threaded worker: two workers on two cores would run four
#: busy threads, and one worker would already use both cores
_ONE_THREAD = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMBA_NUM_THREADS",
    THREADS_VARIABLE,
)


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
    if cluster is not None:
        with _joined(cluster) as client:
            yield client
        return
    if workers < 1:
        raise InputError(f"--workers must be >= 1, not {workers}", zh="--workers 至少为 1")
    from dask.distributed import Client

    with _local_cluster(workers, memory_limit) as local, Client(local) as client:
        yield client


@contextmanager
def _joined(address: str) -> Iterator[Client]:
    """A client of the scheduler at ``address``; one clear line when it cannot be reached.

    The wait is Dask's connect timeout (``distributed.comm.timeouts.connect``, 30 s unless the
    environment sets ``DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT``).
    """
    from dask.distributed import Client

    try:
        client = Client(address)
    except (OSError, ValueError, TypeError) as error:  # refused, unreachable, malformed
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise InputError(
            f"cannot reach the Dask scheduler at --cluster {address}: {reason}",
            zh=f"无法连接 Dask 调度器 --cluster {address}：{reason}",
        ) from None
    with client:
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


#: ``mapper(func, *iterables) -> list``: one call of ``func`` per item, results in order
Mapper = Callable[..., list]


@contextmanager
def mapping(*, cluster: str | None = None, workers: int | None = None) -> Iterator[Mapper | None]:
    """A mapper on the cluster that ``cluster`` or ``workers`` asks for, or None without either.

    None leaves the caller on its one-process path (and Dask unimported); otherwise the cluster
    is started or joined as :func:`connect` does, and closed on leaving the block.
    """
    if cluster is None and workers is None:
        yield None
        return
    with connect(cluster=cluster, workers=workers) as client:
        yield client_mapper(client)


def client_mapper(client: Client) -> Mapper:
    """``func`` over ``iterables`` on ``client``'s workers: one task per item, results in order.

    ``func`` (often a bound method carrying the district's arrays) and the items are sent to
    the workers before the tasks (not inside the task graph), ``func`` once; a task that fails
    raises here, in the caller. The mapper's ``batches`` (four per worker) tells callers how
    many items are worth a task each: a community's union of cells is far shorter than a task's
    round trip.
    """

    def mapper(func: Callable[..., Any], *iterables: Iterable[Any]) -> list:
        columns = [list(values) for values in iterables]
        count = min((len(values) for values in columns), default=0)
        if count == 0:
            return []
        shared = client.scatter(func, hash=False)
        sent = [client.scatter(values[:count], hash=False) for values in columns]
        futures = client.map(_apply, [shared] * count, *sent, pure=False)
        return client.gather(futures)

    mapper.batches = 4 * max(1, worker_count(client))  # type: ignore[attr-defined]
    return mapper


def _apply(func: Callable[..., Any], *args: Any) -> Any:
    """``func(*args)`` on a worker (``func`` arrives as the scattered object)."""
    return func(*args)
