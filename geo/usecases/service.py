"""What a long-running service reads from the project to keep its caches honest.

``gridmap serve`` keeps things too slow to rebuild per request (the locate index, the layers in
WGS84, map pages) and must never serve them stale (a revoked token, a newly published plan). Two
store-level notions make that cheap and leave api/ without SQL or a file format:

- :class:`ChangeWatch` tells, in microseconds, whether anyone committed since the last look
  (:meth:`geo.storage.store.Store.commit_watch`: a GeoPackage's ``PRAGMA data_version``, the
  PostGIS server's snapshot);
- :func:`fingerprint` reads the revision counters each cache depends on (the published plan and
  its revision, when each layer last changed, the roster, the case events, the grids' workers,
  how often the household records changed, the tokens),
  through SQLAlchemy, so one comparison of tuples says whether a cache is still good. Each part
  is a few index reads, never a scan of a growing table: every server worker reads the parts
  it needs again after each commit, a batch of posted cases included.

Examples
--------
>>> sorted(PARTS) == sorted([*EVERYTHING, "tokens"])
True
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import geopandas as gpd
import pandas as pd
import sqlalchemy as sa
from sqlalchemy import Connection

from geo.people import households, occupancy
from geo.people import roster as team
from geo.plans import publish
from geo.plans import store as plan_store
from geo.storage.store import Store, incident_events, plans, tokens, workers

#: the layers a cache of the published plan depends on
LAYERS = ("buildings", "communities", "grids")


def published_plan(store: Store, conn: Connection | None = None) -> tuple:
    """``(plan_id, revision, published_at)`` of the published plan, ``()`` when there is none."""
    query = (
        sa.select(plans.c.plan_id, plans.c.revision, plans.c.published_at)
        .where(plans.c.status == "published")
        .order_by(plans.c.plan_id.desc())
        .limit(1)
    )
    with store.reading(conn) as c:
        return tuple(c.execute(query).first() or ())


def layer_versions(
    store: Store, names: tuple[str, ...] = LAYERS, conn: Connection | None = None
) -> tuple:
    """``(layer, last change)`` of each of ``names`` that exists, by name.

    Both backends stamp a layer's ``last_change`` whenever its rows are written
    (:meth:`~geo.storage.store.Store.layer_changes`).
    """
    return store.layer_changes(names, conn)


def _roster_version(store: Store, conn: Connection) -> tuple:
    query = sa.select(workers.c.worker_id, workers.c.name, workers.c.phone, workers.c.community)
    return tuple(tuple(row) for row in conn.execute(query.order_by(workers.c.worker_id)))


def _case_events_version(store: Store, conn: Connection) -> tuple:
    """The newest case event and when the cases layer was last written.

    Events are only ever added (a new case, a step), so their highest id moves with every one;
    a case rewritten or removed stamps the layer. No ``count()``: on PostGIS it reads the whole
    table, and every server worker reads this after each batch of posted cases.
    """
    newest = conn.execute(sa.select(sa.func.max(incident_events.c.event_id))).scalar()
    return (newest, *layer_versions(store, ("incidents",), conn))


def _grid_workers_version(store: Store, conn: Connection) -> tuple:
    """The worker of each published grid, as ``fid:worker`` pairs (a reassignment changes it).

    One string made by the database (group_concat / string_agg), not 2,000 rows to Python, from
    the grids layer's index on ``worker_id`` (:data:`~geo.storage.store.LOOKUP_INDEXES`), which
    holds both columns: the rows and their geometries are not read. Pairs, because a swap of
    two grids' workers leaves the list of workers as it was.
    """
    if not store.has_layer("grids", conn):
        return ()
    grids = sa.table("grids", sa.column("fid"), sa.column("worker_id"))
    pair = sa.cast(grids.c.fid, sa.Text) + ":" + sa.func.coalesce(grids.c.worker_id, "-")
    query = sa.select(sa.func.count(), sa.func.aggregate_strings(pair, ","))
    return tuple(conn.execute(query).first() or ())


def _tokens_version(store: Store, conn: Connection) -> tuple:
    """Each token's id and revocation: a revoked token stops working with the next request."""
    row = sa.cast(tokens.c.token_id, sa.Text) + ":" + sa.func.coalesce(tokens.c.revoked_at, "-")
    query = sa.select(sa.func.count(), sa.func.aggregate_strings(row, ","))
    return tuple(conn.execute(query).first() or ())


def _layers_version(store: Store, conn: Connection) -> tuple:
    return layer_versions(store, LAYERS, conn)


def _households_version(store: Store, conn: Connection) -> tuple:
    """How often the household records changed: the maps' occupancy counts follow them."""
    return (households.revision(store, conn),)


#: each part of the fingerprint and how it is read
PARTS: dict[str, Callable[[Store, Connection], tuple]] = {
    "plan": published_plan,
    "layers": _layers_version,
    "workers": _roster_version,
    "incidents": _case_events_version,
    "grid_workers": _grid_workers_version,
    "households": _households_version,
    "tokens": _tokens_version,
}
#: what a cache of the published plan depends on (a new case must not rebuild the locate index)
PLAN = ("plan", "layers", "grid_workers")
#: what a cache may depend on (a token made or revoked changes no page or layer)
EVERYTHING = tuple(part for part in PARTS if part != "tokens")


def fingerprint(store: Store, parts: tuple[str, ...] = EVERYTHING) -> dict[str, tuple]:
    """The revision counters of ``parts`` of the project (:data:`PARTS`; by default every part a
    cache may depend on), read in one snapshot: equal fingerprints, equal data."""
    with store.reading() as conn:
        return {name: PARTS[name](store, conn) for name in parts}


def layer_in_wgs84(store: Store, name: str) -> gpd.GeoDataFrame:
    """``grids``, ``buildings`` (with their grid codes) or ``communities`` of the published plan
    in WGS84, with the spatial index built (before requests share the frame)."""
    if name == "buildings":
        frame = plan_store.read_buildings_with_grids(store)
    elif name == "grids":
        frame = publish.published_grids(store).drop(columns=["plan_id"], errors="ignore")
    else:
        frame = store.read_layer(name)
    frame = frame.to_crs(4326).reset_index(drop=True)
    frame.sindex  # noqa: B018 - build the spatial index once
    return frame


#: the layers whose served rows carry the household records' facts (以房管人)
OCCUPIED = ("buildings", "grids")


def with_occupancy(
    store: Store,
    name: str,
    frame: gpd.GeoDataFrame,
    *,
    buildings: pd.DataFrame | None = None,
) -> gpd.GeoDataFrame:
    """``frame`` (``buildings`` or ``grids`` as :func:`layer_in_wgs84` gives it) as a service
    serves it: with the household records' facts where the project holds records.

    Buildings get :func:`geo.people.occupancy.building_facts` (``households`` recounted,
    ``residents``, ``rented_units``, ``floating_residents``), grids
    :func:`geo.people.occupancy.grid_facts` of ``buildings`` (the buildings as served). Counts
    only: no name, ID number or phone is read. The layer frame stays as it is (the locate index
    and the other routers share it, and must not wait for the household join): without records
    ``frame`` itself comes back, else a copy with its spatial index built.

    Parameters
    ----------
    store
        The project.
    name
        ``"buildings"`` or ``"grids"`` (:data:`OCCUPIED`).
    frame
        The layer in WGS84, from :func:`layer_in_wgs84`.
    buildings
        For ``grids``: the buildings as served (``building_id``, ``grid_code``, ``households``),
        this function's answer for ``buildings``.

    Raises
    ------
    ValueError
        Another layer, or grids without ``buildings``.
    """
    if name not in OCCUPIED:
        raise ValueError(f"no household facts for the layer {name!r}; only {OCCUPIED}")
    if name == "grids" and buildings is None:
        raise ValueError("the grids' facts are summed over the served buildings: pass buildings")
    if not occupancy.has_records(store):
        return frame
    if name == "buildings":
        served = occupancy.building_facts(store, frame)
    else:
        served = occupancy.grid_facts(frame, buildings, store)
    served.sindex  # noqa: B018 - built once, before requests share the frame
    return served


def roster(store: Store) -> pd.DataFrame:
    """The grid workers (:func:`geo.people.roster.roster`)."""
    return team.roster(store)


class ChangeWatch:
    """Whether anyone committed to the project since the last look, in microseconds.

    The store's :meth:`~geo.storage.store.Store.commit_watch` says it: a GeoPackage's
    ``PRAGMA data_version`` on a connection of the watch's own, the server's snapshot on
    PostGIS. A change means "maybe": the caller reads the :func:`fingerprint` to know.
    """

    def __init__(self, store: Store) -> None:
        self._lock = threading.Lock()
        self._version: object = None
        self._first = True
        self._watch = store.commit_watch()

    def changed(self) -> bool:
        """True when something was committed since the previous call (and on the first)."""
        with self._lock:
            version = self._watch()
        if version == self._version and not self._first:
            return False
        self._version, self._first = version, False
        return True

    def close(self) -> None:
        self._watch.close()
