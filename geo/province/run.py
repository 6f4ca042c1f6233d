"""``gridmap province import``: every street of a province, through Dask, into one store.

The client lists the street files, submits one task per street (:func:`~geo.province.pipeline.
process_street`: import, cells, partition, codes, polygons) and writes each street as it
finishes, in its own transaction: its buildings (with their grid code), cells, communities,
roads and grids, and its row in ``province_streets``. A street is therefore either wholly in the
store or absent, and ``province_streets`` says which: ``resume=True`` skips those, so a run
killed half-way goes on without redoing a street or writing a row twice. Tasks are retried
(:data:`RETRIES`) where they raise, and Dask re-runs a dead worker's streets elsewhere. Without
a client the same tasks run one after the other in this process: the reference a cluster run
must equal.

Examples
--------
>>> from geo.province.cluster import connect  # doctest: +SKIP
>>> with connect(workers=2) as client:  # doctest: +SKIP
...     summary = import_province(open_store("province.gpkg", create=True), "province/",
...                               client=client)
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Generator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import pandas as pd

from geo.errors import Conflict
from geo.province.pipeline import (
    Street,
    StreetOptions,
    StreetResult,
    process_street,
    streets_of,
)
from geo.storage.store import Store, now_iso

if TYPE_CHECKING:
    from dask.distributed import Client

#: how often Dask runs a street again after it raised (a dead worker's streets are re-run anyway)
RETRIES = 2
#: the layers a province run writes, one street at a time, and the table of finished streets
LAYERS = ("buildings", "cells", "communities", "roads", "grids")
STREETS = "province_streets"
Progress = Callable[[str, int, int], None]
Task = Callable[..., StreetResult]


@dataclass
class ProvinceSummary:
    """What a province run did: streets found, skipped (already in the store), written, failed."""

    streets: int
    skipped: int = 0
    written: list[str] = field(default_factory=list)
    buildings: int = 0
    grids: int = 0
    flagged: int = 0
    seconds: float = 0.0  # the streets' own time, summed over workers
    cpu_seconds: float = 0.0  # their CPU time, summed
    write_seconds: float = 0.0  # the client's time writing streets into the store
    peak_mb: float = 0.0  # the highest worker peak reported
    failed: dict[str, str] = field(default_factory=dict)  # street -> error


def import_province(
    store: Store,
    source: str | Path | Sequence[Street],
    *,
    client: Client | None = None,
    options: StreetOptions | None = None,
    resume: bool = False,
    progress: Progress | None = None,
    task: Task = process_street,
) -> ProvinceSummary:
    """Import and partition every street file under ``source`` into ``store``.

    Parameters
    ----------
    store
        The province's store (GeoPackage or PostGIS), written by this process only.
    source
        A folder of street files, ``<county>/<street>.parquet`` (street = 9-digit code) with
        ``<street>.roads.parquet`` beside (see :mod:`geo.province.synthetic`); or the streets
        :func:`~geo.province.pipeline.street_files` found (slices of one GDAL file, too).
    client
        A Dask client (:func:`geo.province.cluster.connect`); None runs the streets here.
    options
        How streets are read and partitioned; the same for all.
    resume
        Go on with a run that stopped: streets already in ``province_streets`` are skipped.
        Without it, a store that holds buildings is refused.
    progress
        Called as ``progress("streets", done, total)`` after each street is written.
    task
        The function run per street (tests wrap it to make a worker fail).
    """
    options = options or StreetOptions()
    step = progress or (lambda *_: None)
    paths = streets_of(source)
    finished = _finished(store, resume=resume)
    todo = [path for path in paths if path.stem not in finished]
    summary = ProvinceSummary(streets=len(paths), skipped=len(paths) - len(todo))
    step("streets", summary.skipped, len(paths))
    results = (
        _run_here(todo, options, task) if client is None else _run_on(client, todo, options, task)
    )
    with closing(results):  # on an interruption too: the cluster's tasks are cancelled now
        _store_results(store, results, summary, finished=finished, step=step)
    return summary


def _store_results(
    store: Store,
    results: Generator[Outcome, None, None],
    summary: ProvinceSummary,
    *,
    finished: set[str],
    step: Progress,
) -> None:
    """Write each street as it comes (never one twice), counting it; failures are noted."""
    for street, outcome in results:
        if isinstance(outcome, BaseException):
            summary.failed[street] = f"{type(outcome).__name__}: {outcome}"
            continue
        if outcome.street_code in finished:  # never twice, whatever the scheduler does
            continue
        started = time.perf_counter()
        _write_street(store, outcome)
        summary.write_seconds += time.perf_counter() - started
        finished.add(outcome.street_code)
        _count(summary, outcome)
        step("streets", summary.skipped + len(summary.written), summary.streets)


def _finished(store: Store, *, resume: bool) -> set[str]:
    """The streets already in the store; a store holding other buildings is refused."""
    done = (
        set(store.read_layer(STREETS, columns=["street_code"])["street_code"].astype(str))
        if store.has_layer(STREETS)
        else set()
    )
    existing = store.count("buildings")
    if existing and not resume:
        raise Conflict(
            f"the store already holds {existing} buildings; give --resume to go on with the run "
            "that wrote them, or use another --db",
            zh=f"存储中已有 {existing} 栋建筑；继续上次的运行请加 --resume，或用 --db 指定新文件",
        )
    if existing and not done:
        raise Conflict(
            "the store holds a district, not a province run; use another --db",
            zh="该存储是单个区域的项目，不是省级运行；请用 --db 指定新文件",
        )
    return done


Outcome = tuple[str, StreetResult | BaseException]


def _run_here(
    paths: Sequence[Street], options: StreetOptions, task: Task
) -> Generator[Outcome, None, None]:
    """Each street in this process, in order: the one-process reference."""
    for path in paths:
        yield path.stem, task(path, options)


def _run_on(
    client: Client, paths: Sequence[Street], options: StreetOptions, task: Task
) -> Generator[Outcome, None, None]:
    """Each street as a Dask task, yielded as it finishes (an error after the retries too)."""
    from dask.distributed import as_completed

    if not paths:
        return
    run = uuid.uuid4().hex[:8]  # a stopped run's tasks never meet the next run's
    street_of = {f"street-{path.stem}-{run}": path.stem for path in paths}
    futures = client.map(
        task,
        paths,
        options=options,
        key=list(street_of),
        retries=RETRIES,
        pure=False,
    )
    try:
        for future in as_completed(futures):
            street = street_of[future.key]
            if future.status == "error":
                yield street, future.exception()
            else:
                yield street, future.result()
            future.release()  # the worker may drop the street now that it is written
    finally:
        client.cancel(futures)  # interrupted: no street goes on running for nobody


def _write_street(store: Store, result: StreetResult) -> None:
    """The street's layers and its row in ``province_streets``: one transaction."""
    code = result.street_code
    layers = {
        "buildings": result.buildings,
        "cells": result.cells,
        "communities": result.communities,
        "grids": result.grids,
    }
    if result.roads is not None:
        kept = [c for c in ("name", "kind") if c in result.roads.columns]
        layers["roads"] = result.roads[[*kept, "geometry"]].reset_index(drop=True)
    with store.transaction() as conn:
        if store.get_setting("working_crs", conn=conn) is None:
            store.set_setting(conn, "working_crs", result.buildings.crs.to_string())
        for name, frame in layers.items():
            store.write_layer(conn, name, _with_street(frame, code), mode="append")
        store.write_layer(conn, STREETS, _street_row(result), mode="append")
        store.log(conn, "province street", street=code, buildings=len(result.buildings))


def _with_street(frame: gpd.GeoDataFrame, code: str) -> gpd.GeoDataFrame:
    """The frame with its street's code, as every province layer has it."""
    if "street_code" in frame.columns:
        return frame
    tagged = frame.copy()
    tagged.insert(0, "street_code", code)
    return tagged


def _street_row(result: StreetResult) -> gpd.GeoDataFrame:
    """One row of ``province_streets``: the street's outline, counts and cost."""
    flagged = int((result.grids["status"] != "ok").sum())
    row: dict[str, Any] = {
        "street_code": [result.street_code],
        "buildings": [len(result.buildings)],
        "communities": [len(result.communities)],
        "grids": [len(result.grids)],
        "flagged": [flagged],
        "seconds": [round(result.seconds, 3)],
        "cpu_seconds": [round(result.cpu_seconds, 3)],
        "peak_mb": [round(result.peak_mb, 1)],
        "finished_at": [now_iso()],
    }
    outline = result.communities.geometry.union_all()
    return gpd.GeoDataFrame(row, geometry=[outline], crs=result.communities.crs)


def _count(summary: ProvinceSummary, result: StreetResult) -> None:
    summary.written.append(result.street_code)
    summary.buildings += len(result.buildings)
    summary.grids += len(result.grids)
    summary.flagged += int((result.grids["status"] != "ok").sum())
    summary.seconds += result.seconds
    summary.cpu_seconds += result.cpu_seconds
    summary.peak_mb = max(summary.peak_mb, result.peak_mb)


def read_province(store: Store) -> dict[str, pd.DataFrame]:
    """The province layers, each sorted by its key (the order streets finished in is lost)."""
    keys = {
        "buildings": ["building_id"],
        "cells": ["building_id"],
        "communities": ["street_code", "number"],
        "grids": ["grid_code"],
        STREETS: ["street_code"],
    }
    return {
        name: store.read_layer(name).sort_values(key).reset_index(drop=True)
        for name, key in keys.items()
        if store.has_layer(name)
    }
