"""A province's streets side by side: each street's figures and outline, rolled up by county,
city or province, and the names of divisions of every level.

One PostGIS database holds a province's streets, one schema each (:mod:`geo.storage.postgis`);
a county's office wants its streets in one table and one map, not one command per street. The
figures of a street are the ones its own commands print: its buildings, communities, grids and
workers by count, and its cases as ``gridmap incidents stats --division STREET`` counts them
(:func:`geo.incidents.stats.incident_stats` on the same tables, summed over the street's grids).
Rates are recomputed from the summed counts, so a county's 结案率 is its closed cases over its
registered ones, never a mean of its streets' rates. The hierarchy is :mod:`geo.divisions`'s.

A GeoPackage is one street (its ``division_code`` setting): ``--by street`` gives that street and
county, city or province roll up its single row, as they would in a database holding only it.

Examples
--------
>>> rollup = division_rollup("postgresql://gridmap@db/js", by="county", under="3205")  # doctest: +SKIP
>>> rollup.loc["320581", ["streets", "reported", "overdue"]].tolist()  # doctest: +SKIP
[12, 3480, 41]
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.defaults import is_server_url
from geo.divisions import (
    LEVELS,
    PLACEHOLDER_DIVISION_CODE,
    Level,
    covers,
    parse_division,
    rollup_code,
)
from geo.errors import InputError, NotFound
from geo.incidents import records as stored
from geo.incidents.stats import case_timeline, incident_stats
from geo.incidents.workflow import is_open
from geo.reference import reference_file
from geo.storage.store import Store, open_store

__all__ = [
    "BY_LEVELS",
    "CASE_COUNTS",
    "MAP_FIGURES",
    "PROJECT_COUNTS",
    "division_list",
    "division_names",
    "division_rollup",
    "name_division",
    "street_figures",
    "street_frame",
]

#: the levels a rollup groups streets by
BY_LEVELS: tuple[Level, ...] = ("street", "county", "city", "province")
#: what a street holds, by count
PROJECT_COUNTS = ("buildings", "communities", "grids", "workers")
#: the case counts of ``gridmap incidents stats`` (summed over a street's grids), and open ones
CASE_COUNTS = ("reported", "registered", "closed", "closed_on_time", "overdue", "open")
#: what a street's popup on a county or city map lists, in order
MAP_FIGURES = (
    "buildings",
    "communities",
    "grids",
    "workers",
    "reported",
    "open",
    "overdue",
    "closed",
)
#: each rate of ``gridmap incidents stats`` as (numerator, denominator)
RATES = {
    "registration_rate": ("registered", "reported"),
    "closure_rate": ("closed", "registered"),
    "on_time_rate": ("closed_on_time", "closed"),
}
#: the shipped names of divisions (code, name): data/division_names.csv
NAMES_FILE = "division_names.csv"
#: how far (metres) a street's outline may stray from its communities' union once simplified
OUTLINE_TOLERANCE = 10.0


def division_rollup(
    db: str,
    *,
    by: str = "street",
    under: str | None = None,
    since: Any = None,
    until: Any = None,
) -> gpd.GeoDataFrame:
    """Every street's figures under ``under``, rolled up by ``by``.

    Parameters
    ----------
    db : str
        A PostGIS URL (many streets) or a GeoPackage path (one street).
    by : {"street", "county", "city", "province"}
        The level to group streets by.
    under : str, optional
        A division code of any level (``3205``, ``320500``, ``320581``): only the streets in it.
    since, until : Timestamp, optional
        The cases reported in ``[since, until)``, as ``gridmap incidents stats`` takes them.

    Returns
    -------
    GeoDataFrame
        Indexed by ``code`` (at level ``by``), in code order: ``level``, ``name``, ``streets``,
        :data:`PROJECT_COUNTS`, :data:`CASE_COUNTS`, the :data:`RATES` and the outline (WGS84).

    Raises
    ------
    InputError
        An unknown ``by`` or a malformed ``under``.
    NotFound
        No street under ``under``.
    """
    level = _by_level(by)
    streets = street_frame(db, under=under, since=since, until=until)
    return _rolled_up(streets, level, division_names(db))


def street_frame(
    db: str, *, under: str | None = None, since: Any = None, until: Any = None
) -> gpd.GeoDataFrame:
    """One row per street under ``under`` (see :func:`division_rollup`, ``by="street"``),
    before names and rates."""
    prefix = None if under is None else parse_division(under).code
    rows, outlines = [], []
    for code, store in _streets(db, under=prefix):
        rows.append({"code": code, **street_figures(store, since=since, until=until)})
        outlines.append(street_outline(store))
        _close(store)
    if not rows:
        raise NotFound(
            f"no street under {prefix} in this database"
            if prefix
            else "no street in this database",
            zh=f"数据库中没有 {prefix or ''} 下的街道",
        )
    frame = pd.DataFrame(rows).set_index("code")
    return gpd.GeoDataFrame(frame, geometry=outlines, crs=4326)


def street_figures(store: Store, *, since: Any = None, until: Any = None) -> dict[str, int]:
    """A street's :data:`PROJECT_COUNTS` and :data:`CASE_COUNTS`.

    The case counts are ``gridmap incidents stats``'s (per grid, summed): the same tables
    (:func:`geo.incidents.records.stats_tables`), catalogue and :func:`incident_stats`;
    ``open`` is each case's status as of ``until`` by :func:`~geo.incidents.workflow.is_open`.
    """
    figures = {name: store.count(name) for name in PROJECT_COUNTS}
    cases, events = stored.stats_tables(store, stored.CaseFilter(since=since, until=until))
    if cases.empty:
        return figures | dict.fromkeys(CASE_COUNTS, 0)
    catalogue = stored.catalogue(store)
    per_grid = incident_stats(
        cases, events, by="grid", since=since, until=until, catalogue=catalogue
    )
    figures |= {name: int(per_grid[name].sum()) for name in CASE_COUNTS if name != "open"}
    if until is not None:
        events = events.loc[events["at"] < pd.Timestamp(until)]
    timeline = case_timeline(cases, events, catalogue=catalogue)
    return figures | {"open": int(is_open(timeline["status"]).sum())}


def street_outline(store: Store, *, tolerance: float = OUTLINE_TOLERANCE) -> Any:
    """The union of the street's communities, simplified by ``tolerance`` metres, in WGS84
    (None without a communities layer)."""
    if not store.has_layer("communities"):
        return None
    layer = store.read_layer("communities", columns=[])
    if layer.empty:
        return None
    if layer.crs.is_geographic:
        layer = layer.to_crs(layer.estimate_utm_crs())
    shape = shapely.union_all(shapely.make_valid(layer.geometry.to_numpy()))
    outline = gpd.GeoSeries([shape.simplify(tolerance)], crs=layer.crs).to_crs(4326)
    return outline.iloc[0]


def division_names(db: str) -> dict[str, str]:
    """The name of each division known: the shipped ones (``data/division_names.csv``), a
    street's ``district_name`` setting, then the names given with :func:`name_division`."""
    names = _shipped_names()
    if is_server_url(db):
        from geo.storage.postgis import registered_divisions, stored_division_names

        registered = registered_divisions(db)
        names |= {row.code: row.name for row in registered.itertuples() if row.name}
        return names | stored_division_names(db)
    store = open_store(db)
    try:
        code, name = _own_street(store), store.get_setting("district_name")
    finally:
        _close(store)
    return names | ({code: name} if name else {})


def name_division(db: str, code: str, name: str) -> str:
    """Give the division ``code`` (any level) the name ``name``; its short code.

    In a PostGIS database any division may be named. A GeoPackage is one street: naming it sets
    its ``district_name`` (the title of its maps); other codes are refused.
    """
    code = parse_division(code).code
    name = name.strip()
    if not name or len(name) > 100:
        raise InputError(
            "a division's name is 1 to 100 characters", zh="区划名称应为 1 到 100 个字符"
        )
    if is_server_url(db):
        from geo.storage import postgis

        postgis.name_division(db, code, name)
        return code
    store = open_store(db)
    try:
        if code != _own_street(store):
            raise InputError(
                f"this project is one street ({_own_street(store)}); the names of other "
                "divisions live in a PostGIS database of many streets",
                zh="该项目只有一个街道；其他区划的名称保存在 PostGIS 数据库中",
            )
        with store.transaction() as conn:
            store.set_setting(conn, "district_name", name)
    finally:
        _close(store)
    return code


def division_list(db: str, *, under: str | None = None) -> pd.DataFrame:
    """Every division holding a street under ``under``, at every level down to the streets, and
    the divisions named in the database: ``code``, ``level``, ``name``, ``streets`` (below or
    itself), ``buildings``, ``grids``; in code order (a county before its streets)."""
    prefix = None if under is None else parse_division(under).code
    rows = []
    for code, store in _streets(db, under=prefix):
        rows.append({"code": code, **{n: store.count(n) for n in ("buildings", "grids")}})
        _close(store)
    streets = pd.DataFrame(rows, columns=["code", "buildings", "grids"])
    names = division_names(db)
    levels = [length for _, length in LEVELS if length <= 9]
    codes = {code[:length] for code in streets["code"] for length in levels}
    codes |= {c for c in _named_in_database(db) if covers(prefix, c) and len(c) <= 9}
    listed = []
    for code in sorted(codes):
        below = streets.loc[streets["code"].str.startswith(code)]
        listed.append(
            {
                "code": code,
                "level": parse_division(code).level,
                "name": names.get(code, ""),
                "streets": len(below),
                "buildings": int(below["buildings"].sum()),
                "grids": int(below["grids"].sum()),
            }
        )
    return pd.DataFrame(listed, columns=["code", "level", "name", "streets", "buildings", "grids"])


# -- steps ---------------------------------------------------------------------------------------
def _by_level(by: str) -> Level:
    if by not in BY_LEVELS:
        raise InputError(
            f"--by must be one of {', '.join(BY_LEVELS)} to roll streets up, not {by!r}",
            zh="--by 只能是 street、county、city 或 province",
        )
    return by  # type: ignore[return-value]


def _rolled_up(streets: gpd.GeoDataFrame, level: Level, names: dict[str, str]) -> gpd.GeoDataFrame:
    """The streets grouped by their code at ``level``: counts summed, outlines merged, rates
    from the sums, names from ``names``."""
    keys = pd.Index([rollup_code(code, level) for code in streets.index], name="code")
    counts = [*PROJECT_COUNTS, *CASE_COUNTS]
    groups = pd.DataFrame(streets[counts]).groupby(keys, sort=True)
    frame = groups.sum().astype("int64")
    frame.insert(0, "streets", groups.size())
    outlines = pd.Series(streets.geometry.to_numpy(), index=keys)
    shapes = [_merged(outlines.loc[[code]].to_numpy()) for code in frame.index]
    for rate, (numerator, denominator) in RATES.items():
        total = frame[denominator].where(frame[denominator] > 0)
        frame[rate] = frame[numerator] / total
    frame.insert(0, "name", [names.get(code, "") for code in frame.index])
    frame.insert(0, "level", level)
    return gpd.GeoDataFrame(frame, geometry=shapes, crs=4326)


def _merged(outlines: np.ndarray) -> Any:
    present = outlines[~shapely.is_missing(outlines)]
    return (
        shapely.union_all(present) if len(present) > 1 else (present[0] if len(present) else None)
    )


def _streets(db: str, *, under: str | None) -> Iterator[tuple[str, Store]]:
    """Each street under ``under`` with its store (the caller closes it), in code order."""
    if is_server_url(db):
        from geo.storage.postgis import registered_divisions

        for code in registered_divisions(db, under=under)["code"]:
            yield code, open_store(db, division=code)
        return
    store = open_store(db)
    try:
        code = _own_street(store)
    except InputError:
        _close(store)
        raise
    if covers(under, code):
        yield code, store
    else:
        _close(store)


def _own_street(store: Store) -> str:
    """The one street a GeoPackage is (its ``division_code``), refused where it has none."""
    code = store.get_setting("division_code")
    if code in (None, "", PLACEHOLDER_DIVISION_CODE) or len(str(code)) != 9:
        raise InputError(
            "this project has no street code yet; set it first: "
            "gridmap settings set division_code 320581104",
            zh="该项目尚未设置街道代码：请先运行 gridmap settings set division_code 320581104",
        )
    return str(code)


def _named_in_database(db: str) -> list[str]:
    if not is_server_url(db):
        return []
    from geo.storage.postgis import stored_division_names

    return list(stored_division_names(db))


def _shipped_names() -> dict[str, str]:
    with reference_file(NAMES_FILE).open(encoding="utf-8", newline="") as names:
        return {row["code"]: row["name"] for row in csv.DictReader(names)}


def _close(store: Store) -> None:
    engine = getattr(store, "engine", None)
    if engine is not None:
        engine.dispose()
