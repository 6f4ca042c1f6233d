"""Whole-district operations on the project file: import buildings, export layers, settings.

These are what ``gridmap import`` / ``gridmap export`` and the API call; each write is one
transaction of the :class:`~geo.storage.store.Store`.

The import's long steps are each community's: its cells (where communities are tessellated one by
one) and its outline. A *mapper* (``gridmap import --workers N``, a Dask client's map) runs them on
a cluster; :func:`map_communities` is the one path both take, so a cluster gives exactly the
layers of one process.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import sqlalchemy as sa
from sqlalchemy import Connection

from geo.buildings import reading as io
from geo.buildings.communities import CommunityAssignment, assign_communities, merged_names_note
from geo.buildings.reading import ReadOptions
from geo.errors import Conflict, InputError, NotFound
from geo.grids import boundaries, codes
from geo.storage.store import DEFAULT_PATH, Store, assignments, edits, grid_codes, plans

DEFAULT_DB = DEFAULT_PATH
#: used, with a warning and a note on the plan, until a project sets its own: never another
#: place's code (a Shanghai plan once got Changshu's 320581104...)
DEFAULT_DIVISION_CODE = codes.PLACEHOLDER_DIVISION_CODE
PLACEHOLDER_NOTE = (
    "placeholder division code 000000000: set division_code, then gridmap plan recode"
)
DEFAULT_SETTINGS: dict[str, Any] = {
    "division_code": None,
    "min_size": 4,
    "max_size": 5,
    "max_households": None,
}

Progress = Callable[[str, int, int], None]
#: ``mapper(func, *iterables) -> list``: a ``map`` whose results come in order; a Dask client's
#: map and gather on a cluster (:func:`geo.province.cluster.mapping`)
Mapper = Callable[..., list]

OSM_ATTRIBUTION = io.OSM_ATTRIBUTION  # kept with OSM data unless the import gives another credit


@dataclass
class ImportSummary:
    """What ``gridmap import`` did, for its closing table."""

    read: io.ReadReport
    buildings: int
    communities: int
    community_method: str
    working_crs: str
    warnings: list[tuple[str, str]] = field(default_factory=list)  # (English, Chinese)


def working_crs(store: Store) -> pyproj.CRS:
    """The district's metric CRS, chosen at import."""
    epsg = store.get_setting("working_crs")
    if epsg is None:
        raise NotFound(
            "the project holds no buildings yet; run 'gridmap import' first",
            zh="项目中还没有建筑，请先运行 gridmap import",
        )
    return pyproj.CRS.from_user_input(epsg)


def get_settings(store: Store) -> dict[str, Any]:
    """The project's settings, defaults filled in."""
    return {**DEFAULT_SETTINGS, **store.all_settings()}


def set_setting(store: Store, key: str, value: str) -> None:
    """Check and store one setting."""
    parsed: Any
    if key == "division_code":
        parsed = value.strip()
        if len(parsed) != 9 or not parsed.isdigit():
            raise InputError(
                f"division_code must be 9 digits (6-digit county code + 3-digit street code, e.g. "
                f"320581104), not {value!r}",
                zh=f"区划代码应为 9 位数字（6 位县级代码 + 3 位街道代码，如 320581104），而不是 {value}",
            )
        if parsed == codes.PLACEHOLDER_DIVISION_CODE:
            raise InputError(
                f"{parsed} is the placeholder for a project without a division code; give your "
                "county + street code",
                zh=f"{parsed} 是未设置区划代码时的占位符，请给出本地的县级 + 街道代码",
            )
        parsed = codes.validate_division_code(parsed)
        street = store.division
        if street is not None and parsed != street:  # a street of a database is its own code
            raise InputError(
                f"this project is street {street} of its database; its division code stays "
                f"{street} (copy it into street {parsed} with gridmap copy --division)",
                zh=f"该项目是数据库中的街道 {street}，区划代码不能改为 {parsed}",
            )
    elif key in ("min_size", "max_size", "max_households"):
        if not value.strip().isdigit() or int(value) < 1:
            raise InputError(
                f"{key} must be a whole number >= 1, not {value!r}", zh=f"{key} 必须是正整数"
            )
        parsed = int(value)
    else:
        parsed = value
    proposed = {**get_settings(store), key: parsed}
    if proposed["min_size"] > proposed["max_size"]:
        raise InputError(
            f"min_size {proposed['min_size']} would be above max_size {proposed['max_size']}",
            zh="最少建筑数不能大于最多建筑数",
        )
    with store.transaction() as conn:
        store.set_setting(conn, key, parsed)
        store.log(conn, "settings", key=key, value=parsed)


@dataclass
class RecodeOutcome:
    """What ``gridmap plan recode`` did."""

    division_code: str
    previous: list[str]  # the division codes replaced
    codes: int  # grid codes renumbered


#: tables and layers whose ``grid_code`` column holds grid codes
CODE_TABLES = ("assignments", "grid_codes", "plan_grids", "grids", "incidents")


def recode_division(store: Store, *, author: str = "") -> RecodeOutcome:
    """Renumber every plan's grids under the project's division code; the numbers stay.

    A code is kept by a child plan only under its parent's prefix, so all plans move together:
    assignments, plan grids, the published grids, the code registry, cases' grids and the edit
    history, in one transaction. Refused without a division code, or when a renamed code would
    meet one already issued under the new prefix.
    """
    new = store.get_setting("division_code")
    if not new:
        raise InputError(
            "no division code is set; first run: gridmap settings set division_code <9 digits>",
            zh="尚未设置区划代码；请先运行 gridmap settings set division_code <9位代码>",
        )
    with store.transaction() as conn:
        issued = list(conn.execute(sa.select(grid_codes.c.grid_code)).scalars())
        moving = [code for code in issued if code[:9] != new]
        if not moving:
            return RecodeOutcome(new, [], 0)
        clash = sorted({new + code[9:] for code in moving} & set(issued))
        if clash:
            raise Conflict(
                f"codes {', '.join(clash[:3])} are already issued under {new}; the plans cannot be "
                "renumbered without two grids sharing a code",
                zh=f"编码 {', '.join(clash[:3])} 已在 {new} 下使用，重新编码会产生重复编码",
            )
        previous = sorted({code[:9] for code in moving})
        for table in CODE_TABLES:
            if "grid_code" in store.columns(table, conn):
                _recode_table(conn, table, new)
        _recode_history(conn, previous, new)
        conn.execute(
            sa.update(plans).values(
                note=sa.func.replace(plans.c.note, f" ({PLACEHOLDER_NOTE})", "")
            )
        )
        store.log(
            conn, "recode", actor=author, division_code=new, previous=previous, codes=len(moving)
        )
    return RecodeOutcome(new, previous, len(moving))


def _recode_table(conn: Connection, table: str, new: str) -> None:
    """Every 15-digit grid code of ``table`` under the division code ``new``."""
    code = sa.column("grid_code")
    conn.execute(
        sa.update(sa.table(table, code))
        .where(sa.func.length(code) == 15, sa.func.substr(code, 1, 9) != new)
        .values(grid_code=sa.literal(new) + sa.func.substr(code, 10))
    )


def _recode_history(conn: Connection, previous: list[str], new: str) -> None:
    """The codes inside the edit history (arguments, undo patches) under the new prefix."""
    pattern = re.compile(rf"(?<!\d)(?:{'|'.join(previous)})(?=\d{{6}}(?!\d))")
    rows = conn.execute(sa.select(edits.c.edit_id, edits.c.args, edits.c.inverse)).fetchall()
    for edit_id, args, inverse in rows:
        fresh = (pattern.sub(new, args), pattern.sub(new, inverse))
        if fresh != (args, inverse):
            conn.execute(
                sa.update(edits)
                .where(edits.c.edit_id == edit_id)
                .values(args=fresh[0], inverse=fresh[1])
            )


def import_buildings(  # noqa: PLR0913 (keyword-only options of the import, as sjoin has)
    store: Store,
    path: str | Path,
    *,
    options: ReadOptions | None = None,
    communities_path: str | Path | None = None,
    communities_field: str | None = None,
    roads_path: str | Path | None = None,
    replace: bool = False,
    progress: Progress | None = None,
    mapper: Mapper | None = None,
) -> ImportSummary:
    """Read, check and store a district's footprints, communities and cells in one transaction.

    Parameters
    ----------
    store
        The project file.
    path
        The footprints file, read with ``options`` (see :class:`~geo.buildings.reading.ReadOptions`).
    communities_path, communities_field
        Community polygons and their name field, when the footprints carry no community.
    roads_path
        Roads, to cut street blocks where there are neither community fields nor polygons.
    replace
        Start the district over when the project already holds buildings (refused otherwise).
    progress, mapper
        Called with (step, done, total) as the import goes; the communities' cells and outlines
        run by ``mapper`` (a cluster's map, see :func:`map_communities`) when it is given.
    """
    step = progress or (lambda *_: None)
    _refuse_existing(store, replace=replace)
    step("read", 0, 1)
    buildings, report = io.read_buildings(path, options)
    step("read", 1, 1)
    metric = buildings.crs
    polygons = io.read_polygons(communities_path, crs=metric) if communities_path else None
    roads = io.read_lines(roads_path, crs=metric) if roads_path else None
    step("communities", 0, 1)
    found = assign_communities(
        buildings, communities=polygons, communities_field=communities_field, roads=roads
    )
    buildings["community"] = found.community
    step("communities", 1, 1)
    district = district_layers(buildings, found, roads=roads, step=step, mapper=mapper)
    step("write", 0, 1)
    with store.transaction() as conn:
        if replace:
            _clear_district(store, conn)
        _write_district(store, conn, district)
        _write_import_settings(store, conn, path, report, buildings=buildings, method=found.method)
    step("write", 1, 1)
    return ImportSummary(
        read=report,
        buildings=len(buildings),
        communities=len(district.communities),
        community_method=found.method,
        working_crs=metric.to_string(),
        warnings=[
            *_encoding_warning(path, report),
            *_footprint_warnings(report),
            *district.warnings,
        ],
    )


#: notes on footprints kept that may not be buildings: (report field, English, Chinese), each
#: after the count; {ids} names the first few
_FOOTPRINT_NOTES = (
    (
        "duplicate_ids",
        "footprints repeat an earlier one exactly ({ids}); each is kept as a building of its "
        "own: remove the copies if they are one building",
        "个建筑轮廓与前面的轮廓完全相同（{ids}），均按单独建筑导入；如为同一栋楼请删除重复",
    ),
    (
        "scattered_ids",
        "footprints are made of parts more than 10 m apart ({ids}), each kept as one building: "
        "a dissolved layer rather than buildings?",
        "个建筑轮廓由相距 10 米以上的多块组成（{ids}），各按一栋建筑导入：是否为合并后的图层？",
    ),
    (
        "container_ids",
        "footprints hold two or more others whole ({ids}): a site or estate boundary rather "
        "than a building? remove it if so",
        "个轮廓完整包含两个以上其他轮廓（{ids}），可能是用地或小区红线而非建筑，如是请删除",
    ),
)


def _footprint_warnings(report: io.ReadReport) -> list[tuple[str, str]]:
    """Notes on what the reader met and kept: names read as one, ids numbered instead, and
    footprints that may not be buildings (:data:`_FOOTPRINT_NOTES`)."""
    notes = [merged_names_note(group) for group in report.merged_communities]
    if report.community_field_guessed:
        field = report.community_field_guessed
        notes.append(
            (
                f"communities taken from the file's field {field!r}, which every building fills "
                "(give --community-field to use another)",
                f"社区取自文件中的字段 {field}（每栋建筑均有值；如需其他字段请加 --community-field）",
            )
        )
    if report.numbered_instead_of:
        field = report.numbered_instead_of
        notes.append(
            (
                f"the ids in {field!r} repeat, so the buildings were numbered B000001, B000002, ... "
                "instead; give --id-field to use another field",
                f"字段 {field} 中的编号有重复，建筑已改为按 B000001、B000002……编号；"
                "如需使用其他字段请加 --id-field",
            )
        )
    for name, english, chinese in _FOOTPRINT_NOTES:
        ids = getattr(report, name)
        if ids:
            shown = ", ".join(ids[:5])
            notes.append(
                (
                    f"{len(ids)} {english.format(ids=shown)}",
                    f"{len(ids)} {chinese.format(ids=shown)}",
                )
            )
    return notes


def _encoding_warning(path: str | Path, report: io.ReadReport) -> list[tuple[str, str]]:
    """A note where the file did not say how its text is encoded and it was worked out."""
    encoding, name = report.text_encoding, Path(path).name
    if not encoding:
        return []
    if Path(path).suffix.lower() not in (".shp", ".zip"):
        return [
            (
                f"{name} is not UTF-8 text; it was read as {encoding}",
                f"{name} 不是 UTF-8 文本，已按 {encoding} 读取",
            )
        ]
    return [
        (
            f"{name} does not say how its text is encoded (its .cpg file is missing or names "
            f"another encoding); it was read as {encoding}. If names look wrong, put the right "
            "encoding in its .cpg file",
            f"{name} 未正确注明文本编码（缺少 .cpg 文件或其编码与内容不符），已按 {encoding} 读取；"
            "如名称显示异常，请在 .cpg 文件中写明正确编码",
        )
    ]


@dataclass
class DistrictLayers:
    """What an import writes: the layers and the warnings met building them."""

    buildings: gpd.GeoDataFrame
    communities: gpd.GeoDataFrame
    cells: gpd.GeoDataFrame
    roads: gpd.GeoDataFrame | None
    warnings: list[tuple[str, str]]


def _refuse_existing(store: Store, *, replace: bool) -> None:
    existing = store.count("buildings")
    if existing and not replace:
        raise Conflict(
            f"the project already holds {existing} buildings; give --replace to start the district "
            "over (its plans, grids and incidents' grid assignments are removed), or use another --db",
            zh=f"项目中已有 {existing} 栋建筑；如需重新导入请加 --replace，或用 --db 指定新文件",
        )


def district_layers(
    buildings: gpd.GeoDataFrame,
    found: CommunityAssignment,
    *,
    roads: gpd.GeoDataFrame | None,
    step: Progress,
    mapper: Mapper | None = None,
) -> DistrictLayers:
    """The buildings' cells and the community table, from the communities ``found``; the
    communities' own work runs through ``mapper`` when given (see :func:`map_communities`)."""
    cells = boundaries.building_cells(
        buildings,
        communities=found.outlines,
        roads=roads,
        progress=lambda done, total: step("cells", done, total),
        mapper=mapper,
    )
    warnings = list(found.warnings)
    if cells.attrs.get("rebuilt"):
        names = ", ".join(cells.attrs["rebuilt"])
        warnings.append(
            (
                f"the cells of {names} did not share their edges exactly; they were rebuilt from "
                "their noded boundaries",
                f"{names} 的建筑单元边界不完全重合，已按节点化边界重建",
            )
        )
    outlines = found.outlines
    if outlines is None:
        parts = map_communities(
            boundaries.community_outlines, buildings["community"], buildings, cells, mapper=mapper
        )
        outlines = pd.concat(parts, ignore_index=True)
    cell_frame = gpd.GeoDataFrame(
        {"building_id": buildings["building_id"], "community": buildings["community"]},
        geometry=cells.values,
        crs=buildings.crs,
    )
    return DistrictLayers(
        buildings, _community_table(buildings, outlines), cell_frame, roads, warnings
    )


def map_communities(
    func: Callable[..., Any],
    community: pd.Series,
    *frames: pd.DataFrame | pd.Series,
    mapper: Mapper | None,
) -> list:
    """``func(*parts)`` on the rows of ``frames`` (aligned to ``community``), by community.

    Without ``mapper`` (one process), a single call on all the rows: the step as it always ran.
    With one, the communities in the order they first appear are cut into consecutive batches
    (``mapper.batches`` of them when the mapper says, else one per community) of about as many
    rows each, every community's rows in their order: results concatenated in batch order are
    the one call's, for steps (unions of cells) that see nothing beyond a community.
    """
    if mapper is None or community.empty:
        return [func(*frames)]
    key = community.astype(object).where(community.notna(), "")
    codes = pd.factorize(key, sort=False)[0]
    order = np.argsort(codes, kind="stable")  # rows by community, first seen first
    ends = np.flatnonzero(np.diff(codes[order])) + 1  # where each community's rows end
    batches = getattr(mapper, "batches", None)
    if batches is not None:  # the first community end at or after each even share of rows
        shares = np.linspace(0, len(order), batches + 1)[1:-1]
        picked = np.unique(np.searchsorted(ends, shares))
        ends = ends[picked[picked < len(ends)]]
    groups = np.split(order, ends)
    return mapper(func, *[[frame.iloc[rows] for rows in groups] for frame in frames])


def _write_district(store: Store, conn: Any, district: DistrictLayers) -> None:
    """Write the district's layers (a previous import's roads go when this one has none)."""
    store.write_layer(
        conn,
        "buildings",
        district.buildings,
        description="building footprints (one residents' group each)",
    )
    store.write_layer(conn, "communities", district.communities, description="communities (社区)")
    store.write_layer(
        conn, "cells", district.cells, description="one tessellation cell per building"
    )
    roads = district.roads
    if roads is not None:
        kept = [c for c in ("name", "kind") if c in roads.columns]
        store.write_layer(
            conn,
            "roads",
            roads[[*kept, "geometry"]].reset_index(drop=True),
            description="roads: blocks and grids do not cross major roads",
        )
    elif store.has_layer("roads", conn):
        store.drop_layer(conn, "roads")


def _write_import_settings(
    store: Store,
    conn: Any,
    path: str | Path,
    report: io.ReadReport,
    *,
    buildings: gpd.GeoDataFrame,
    method: str,
) -> None:
    """The district's CRS, source and credit, and the import's entry in the audit log."""
    store.set_setting(conn, "working_crs", buildings.crs.to_string())
    store.set_setting(conn, "source_crs", report.source_crs)
    store.set_setting(conn, "source_file", str(path))
    store.set_setting(conn, "attribution", report.attribution)
    store.log(
        conn,
        "import",
        source=str(path),
        buildings=len(buildings),
        method=method,
        repaired_ids=report.repaired_ids,
        dropped_ids=report.dropped_ids,
    )


def _community_table(buildings: gpd.GeoDataFrame, outlines: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """One row per community: number (by reading order), name, counts, outline."""
    outlines = outlines.to_crs(buildings.crs).dissolve("community", as_index=False)[
        ["community", "geometry"]
    ]
    stats = buildings.groupby("community").agg(
        n_buildings=("building_id", "size"), households=("households", "sum")
    )
    table = outlines.merge(stats, left_on="community", right_index=True, how="inner")
    centres = table.geometry.representative_point()
    order = sorted(
        range(len(table)), key=lambda i: (-round(centres.iloc[i].y / 200), centres.iloc[i].x)
    )
    number = pd.Series(range(1, len(table) + 1), index=table.index[order])
    table["number"] = number.reindex(table.index).astype("int64")
    return table.sort_values("number").reset_index(drop=True)[
        ["community", "number", "n_buildings", "households", "geometry"]
    ]


def _clear_district(store: Store, conn: Any) -> None:
    for layer in ("grids", "plan_grids"):
        if store.has_layer(layer, conn):
            store.drop_layer(conn, layer)
    conn.execute(assignments.delete())
    conn.execute(plans.delete())
