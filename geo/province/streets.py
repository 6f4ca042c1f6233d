"""A province into one PostGIS database, each street its own division, written by the workers.

:mod:`geo.province.run` gathers every street into one store that the client writes, which bounds
a run by one writer. In a PostGIS database a street is a project of its own (its schema, see
:mod:`geo.storage.postgis`), so a worker can write it: :func:`street_into_database` runs
``gridmap import`` and ``gridmap partition`` (the same use cases, not a copy of their steps) on
one street's file against ``open_store(url, division=street, create=True)``, whose layers go in
with COPY, and returns only its figures. The client schedules and counts.

A street is done when its project has a published plan. A run stopped half-way is resumed
(``resume=True``): done streets are skipped, a street imported but not yet partitioned is
imported again over itself (``replace``) - never a row twice. Dask retries a failed street
(:data:`geo.province.run.RETRIES`) and re-runs a dead worker's elsewhere; a retry of a street
that had finished finds it done.

Examples
--------
>>> from geo.province.cluster import connect  # doctest: +SKIP
>>> with connect(workers=2) as client:  # doctest: +SKIP
...     summary = import_streets("postgresql://gridmap@db/jiangsu", "province/", client=client)
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from geo.collect import fewer_collections
from geo.errors import Conflict
from geo.grids.codes import validate_division_code
from geo.plans.store import published_plan_id
from geo.province.pipeline import (
    Street,
    StreetOptions,
    StreetSlice,
    _peak_mb,
    street_inputs,
    streets_of,
)
from geo.province.run import Progress, ProvinceSummary, _run_here, _run_on
from geo.storage.postgis import registered_divisions
from geo.storage.store import Store, adopt_division, open_store
from geo.usecases.district import import_buildings
from geo.usecases.partition import PartitionOptions, partition_project

if TYPE_CHECKING:
    from dask.distributed import Client


@dataclass(frozen=True)
class StreetDone:
    """What a worker reports of one street (its layers are in the database already)."""

    street_code: str
    skipped: bool  # it was done before this run
    buildings: int = 0
    grids: int = 0
    flagged: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    peak_mb: float = 0.0


def import_streets(
    url: str,
    source: str | Path | Sequence[Street],
    *,
    client: Client | None = None,
    options: StreetOptions | None = None,
    resume: bool = False,
    progress: Progress | None = None,
) -> ProvinceSummary:
    """Import and partition every street file under ``source`` into its own division of the
    PostGIS database ``url``; the workers write (see the module).

    Raises :class:`~geo.errors.Conflict` when a street of ``source`` is in the database already
    and ``resume`` is not given.
    """
    options = options or StreetOptions()
    step = progress or (lambda *_: None)
    paths = streets_of(source)
    _refuse_known(url, [path.stem for path in paths], resume=resume)
    task = partial(street_into_database, url=url)
    summary = ProvinceSummary(streets=len(paths))
    results = (
        _run_here(paths, options, task) if client is None else _run_on(client, paths, options, task)
    )
    with closing(results):  # interrupted: the cluster's tasks are cancelled
        for street, outcome in results:
            _count(summary, street, outcome)
            step("streets", summary.skipped + len(summary.written), summary.streets)
    return summary


def street_into_database(
    path: str | Path | StreetSlice, options: StreetOptions, *, url: str
) -> StreetDone:
    """One street's file into its division of ``url``: import, partition, publish (a worker's
    task; the street code is the file's name)."""
    path = path if isinstance(path, StreetSlice) else Path(path)
    code = validate_division_code(path.stem)
    started, cpu = time.perf_counter(), time.process_time()
    store = open_store(url, division=code, create=True)
    try:
        if _done(store):
            return StreetDone(street_code=code, skipped=True)
        with fewer_collections():
            grids = _import_and_partition(store, path, code, options)
    finally:
        store.engine.dispose()
    return StreetDone(
        street_code=code,
        skipped=False,
        buildings=int(grids["n_buildings"].sum()),
        grids=len(grids),
        flagged=int((grids["status"] != "ok").sum()),
        seconds=time.perf_counter() - started,
        cpu_seconds=time.process_time() - cpu,
        peak_mb=_peak_mb(),
    )


def _import_and_partition(store: Store, path: Street, code: str, options: StreetOptions):
    """``gridmap import --replace`` then ``gridmap partition`` of one street; its grids."""
    adopt_division(store, code)  # the grid codes start with the street's code
    with tempfile.TemporaryDirectory(prefix="gridmap-street-") as folder:
        buildings, roads = street_inputs(path, Path(folder))
        import_buildings(store, buildings, options=options.read, roads_path=roads, replace=True)
    outcome = partition_project(
        store,
        options=PartitionOptions(
            min_size=options.min_size,
            max_size=options.max_size,
            max_households=options.max_households,
            seed=options.seed,
        ),
        author="gridmap province import",
        publish=True,
    )
    return outcome.grids


def _done(store: Store) -> bool:
    """Whether the street has a published plan (imported and partitioned to the end)."""
    return store.has_layer("buildings") and published_plan_id(store) is not None


def _refuse_known(url: str, streets: list[str], *, resume: bool) -> None:
    known = set(registered_divisions(url)["code"]) & set(streets)
    if known and not resume:
        raise Conflict(
            f"the database already holds {len(known)} of these streets (e.g. {min(known)}); "
            "give --resume to go on with the run that wrote them",
            zh=f"数据库中已有其中 {len(known)} 个街道；继续上次的运行请加 --resume",
        )


def _count(summary: ProvinceSummary, street: str, outcome: StreetDone | BaseException) -> None:
    if isinstance(outcome, BaseException):
        summary.failed[street] = f"{type(outcome).__name__}: {outcome}"
        return
    if outcome.skipped:
        summary.skipped += 1
        return
    summary.written.append(outcome.street_code)
    summary.buildings += outcome.buildings
    summary.grids += outcome.grids
    summary.flagged += outcome.flagged
    summary.seconds += outcome.seconds
    summary.cpu_seconds += outcome.cpu_seconds
    summary.peak_mb = max(summary.peak_mb, outcome.peak_mb)
