"""The published plan's locate index, kept in the project file so that no command rebuilds it.

What :class:`~geo.locate.engine.GridIndex` derives from a plan depends only on the plan's polygons and
the buildings: the polygons in priority order with their ids (a tenth of a second to build,
and reading the two layers takes longer), and the cell tables that answer millions of points
a second (seconds to build). Both are kept in the ``locate_indexes`` table, compressed
(:func:`_pack`: zstd; rows kept by earlier versions are zlib's and still read):

* the polygons and ids when the plan is published (:func:`keep_index`, inside the publishing
  transaction), or by the first command that locates in a published plan kept without them;
* the cell tables by the first batch that needs them (``grid_index(..., cells=True)``): once
  per plan, not at publish, where every ``gridmap partition`` would wait seconds for them.

A kept row is used while its plan's revision and creation time are those it was built from
(a plan id reused after ``gridmap import --replace`` has another creation time); each grid's
community and worker are read from ``plan_grids`` every time, since a worker may change without
the polygons changing. This module imports no more than locating needs (no geo.plans.store), so that
``gridmap locate LON LAT`` starts in well under a second.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import geopandas as gpd
import pandas as pd
import sqlalchemy as sa
from sqlalchemy import Connection

from geo.errors import NotFound
from geo.locate.engine import GridIndex
from geo.storage.store import Store, locate_indexes, now_iso
from geo.storage.store import plans as plans_table

__all__ = ["build_index", "frames_index", "grid_index", "keep_index"]


@dataclass(frozen=True)
class _PlanKey:
    plan_id: int
    revision: int
    created_at: str
    published: bool


def grid_index(store: Store, plan_id: int | None = None, *, cells: bool = False) -> GridIndex:
    """The :class:`GridIndex` of a plan (the published one by default), kept or built.

    With ``cells`` the cell tables are loaded too, built and kept first if need be (for
    batches of many points). A published plan's index built here is kept for the next command.

    Raises
    ------
    NotFound
        No such plan, or nothing is published.
    """
    key = _plan_key(store, plan_id)
    if key is None:
        raise _no_plan(plan_id)
    index = _kept(store, key, cells=cells)
    if index is None:
        index = build_index(store, key.plan_id)
        if key.published:
            _keep(store, key, index, cells=cells)
        return index
    if cells and not index.has_cells:
        _keep(store, key, index, cells=True)
    return index


def _no_plan(plan_id: int | None) -> NotFound:
    """What :func:`geo.plans.store.load_plan` says when there is no such plan."""
    if plan_id is None:
        return NotFound(
            "no published plan yet; run 'gridmap partition' first",
            zh="尚无已发布的网格方案，请先运行 gridmap partition",
        )
    return NotFound(
        f"no plan {plan_id}; 'gridmap plan list' shows the plans", zh=f"没有方案 {plan_id}"
    )


def build_index(store: Store, plan_id: int, *, conn: Connection | None = None) -> GridIndex:
    """A fresh :class:`GridIndex` over the buildings and a plan's grids (no cell tables)."""
    buildings = store.read_layer("buildings", columns=["building_id", "community"], conn=conn)
    grids = store.read_layer(
        "plan_grids",
        where={"plan_id": plan_id},
        columns=["grid_code", "community", "worker"],
        conn=conn,
    )
    return GridIndex.build(buildings, grids)


def frames_index(buildings: gpd.GeoDataFrame, grids: gpd.GeoDataFrame) -> GridIndex:
    """The index :func:`build_index` builds from the layers, from frames the caller holds: the
    buildings (``building_id``, geometry) and one plan's grids (``grid_code``, ``community``,
    ``worker``, polygons), as the partition has them when it writes the plan."""
    return GridIndex.build(
        buildings[["building_id", buildings.geometry.name]],
        grids[["grid_code", "community", "worker", grids.geometry.name]],
    )


def keep_index(
    store: Store, conn: Connection, plan_id: int, *, index: GridIndex | None = None
) -> None:
    """Build and keep a plan's index inside the caller's transaction (the publish): the only
    row kept, since only the published plan's index is looked up.

    ``index`` is the plan's index when the caller holds it already (:func:`frames_index`: the
    partition has the frames it has just written, and reading the two layers back took 0.25 s
    of CPU for 36,000 buildings); None builds it from the layers.
    """
    key = _plan_key(store, plan_id, conn=conn)
    try:
        if index is None:
            index = build_index(store, plan_id, conn=conn)
        data = _pack(index.to_bytes())
    except TypeError:  # ids that are not text: not kept, built per command as before
        conn.execute(sa.delete(locate_indexes))
        return
    _replace_row(conn, key, data, None)


def _plan_key(store: Store, plan_id: int | None, *, conn: Connection | None = None):
    """The plan's id, revision, creation time and status (None when there is no such plan)."""
    query = sa.select(
        plans_table.c.plan_id,
        plans_table.c.revision,
        plans_table.c.created_at,
        plans_table.c.status,
    )
    if plan_id is None:
        query = query.where(plans_table.c.status == "published")
    else:
        query = query.where(plans_table.c.plan_id == int(plan_id))
    with store.reading(conn) as c:
        row = c.execute(query.order_by(plans_table.c.plan_id.desc()).limit(1)).first()
    if row is None:
        return None
    return _PlanKey(
        int(row.plan_id), int(row.revision), str(row.created_at), row.status == "published"
    )


def _kept(store: Store, key: _PlanKey, *, cells: bool) -> GridIndex | None:
    """The kept index of the plan, if one was built from this very plan; else None."""
    columns = [locate_indexes.c.index_data, locate_indexes.c.cells if cells else sa.null()]
    with store.reading() as conn:
        row = conn.execute(
            sa.select(*columns).where(
                locate_indexes.c.plan_id == key.plan_id,
                locate_indexes.c.revision == key.revision,
                locate_indexes.c.plan_created_at == key.created_at,
            )
        ).first()
        if row is None:
            return None
        grids = pd.DataFrame(
            conn.execute(
                sa.text("SELECT grid_code, community, worker FROM plan_grids WHERE plan_id = :p"),
                {"p": key.plan_id},
            ).fetchall(),
            columns=["grid_code", "community", "worker"],
        )
        crs = store.layer_crs("buildings", conn)
    try:
        return GridIndex.from_bytes(
            _unpack(row[0]),
            crs=crs,
            grids=grids,
            cells=_unpack(row[1]) if row[1] is not None else None,
        )
    except (ValueError, KeyError, OSError, zlib.error):  # not this plan's, or another version's
        return None


def _keep(store: Store, key: _PlanKey, index: GridIndex, *, cells: bool) -> None:
    """Keep ``index`` (with its cell tables if ``cells``) for ``key``'s plan, if the plan is still
    the published one at that revision: the check and the write are one transaction. A project
    file that cannot be written (read-only) is only slower: the index is not kept."""
    data = _pack(index.to_bytes())
    cell_data = _pack(index.cells_to_bytes()) if cells else None
    try:
        with store.transaction() as conn:
            if _plan_key(store, None, conn=conn) != key:
                return
            _replace_row(conn, key, data, cell_data)
    except sa.exc.OperationalError:
        return


def _replace_row(conn: Connection, key: _PlanKey, data: bytes, cells: bytes | None) -> None:
    """The one kept row: only the published plan's index is ever looked up."""
    conn.execute(sa.delete(locate_indexes))
    conn.execute(
        sa.insert(locate_indexes).values(
            plan_id=key.plan_id,
            revision=key.revision,
            plan_created_at=key.created_at,
            built_at=now_iso(),
            index_data=data,
            cells=cells,
        )
    )


#: how a :func:`_pack`'d blob starts (a zlib stream starts with 0x78): then its size, 8 bytes
_ZSTD = b"GMZ1"


def _pack(raw: bytes) -> bytes:
    """``raw`` compressed for the project file: one zstd frame (level 1, through pyarrow, which
    pandas imports anyway) after :data:`_ZSTD` and the size. zlib at its fastest level took 0.4 s
    of CPU to compress the 70 MB of Suzhou's cell tables and 0.16 s to read them back; zstd
    takes a quarter and about half, and keeps them smaller."""
    from pyarrow import Codec

    packed = Codec("zstd", compression_level=1).compress(raw, asbytes=True)
    return _ZSTD + len(raw).to_bytes(8, "little") + packed


def _unpack(blob: bytes) -> bytes:
    """What :func:`_pack` packed, or a zlib stream (a row kept by an earlier version).

    Raises
    ------
    OSError, ValueError, zlib.error
        The blob is neither (corrupt).
    """
    if bytes(blob[:4]) != _ZSTD:
        return zlib.decompress(blob)
    from pyarrow import Codec

    size = int.from_bytes(blob[4:12], "little")
    return Codec("zstd").decompress(memoryview(blob)[12:], decompressed_size=size, asbytes=True)
