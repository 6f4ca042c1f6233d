"""Layers and the grid ledger written for QGIS, spreadsheets and other offices.

What an office receives must open cleanly where it is read:

- a GeoPackage collects layers: exporting ``--layer buildings`` into a package that already holds
  the grids adds (or replaces) the ``buildings`` layer and keeps the others, so one file carries
  buildings, grids and communities for QGIS; data imported from OpenStreetMap carries its
  attribution in the GeoPackage metadata and in an ``attribution`` column;
- a CSV is read in Excel: times in the district's local time with their offset, the geometry as
  WKT in the last column (or none), formula-like text neutralised, optionally UTF-8 with a BOM so
  Excel on Windows shows Chinese instead of mojibake;
- a Shapefile's limits (10-character field names, 254-character text) are reported as one line
  each instead of GDAL's raw Python warnings;
- the grid ledger (网格台账) is a workbook with Chinese headers: one row per published grid.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import pandas as pd

from geo.buildings import reading as io
from geo.errors import InputError
from geo.exchange.csvsafe import csv_safe_frame
from geo.exchange.xlsx import write_xlsx
from geo.incidents.workflow import OPEN_STATUSES
from geo.people import occupancy
from geo.people.workers import public_worker_columns
from geo.plans.publish import published_grids
from geo.plans.store import read_buildings_with_grids
from geo.storage.store import Store

#: The users' clock: times in exports are shown in it, with the offset written out.
LOCAL_TIME_ZONE = "Asia/Shanghai"

#: The ledger's columns: Chinese header -> the grids layer column it comes from.
LEDGER_HEADERS = {
    "grid_code": "网格编码",
    "community": "社区",
    "worker": "网格员",
    "worker_id": "工号",
    "n_buildings": "楼栋数",
    "households": "户数",
    "open_cases": "在办案件",
}
#: The ledger's occupancy columns (以房管人), where the project keeps household records.
OCCUPANCY_HEADERS = {
    "registered": "户籍户",
    "resident": "常住户",
    "floating": "流动户",
    "vacant": "空置户",
    "residents": "居住人口",
    "rented_units": "出租户",
    "floating_residents": "流动人口",
    "floating_share": "流动人口占比",
    "contact_households": "联系户",
    "visits_30d": "近30天走访",
}

EXPORT_DRIVERS = {
    ".geojson": "GeoJSON",
    ".json": "GeoJSON",
    ".gpkg": "GPKG",
    ".shp": "ESRI Shapefile",
    ".fgb": "FlatGeobuf",
    ".csv": "CSV",
}
EXPORTABLE_LAYERS = ("buildings", "communities", "grids", "incidents")


@dataclass
class ExportResult:
    """What an export wrote: the feature count and one line per data limit the format imposed."""

    count: int
    notes: list[tuple[str, str]] = field(default_factory=list)  # (English, Chinese)


def export_layer_file(
    store: Store,
    out: str | Path,
    *,
    layer: str = "buildings",
    crs: str = "EPSG:4326",
    include_contacts: bool = False,
    excel: bool = False,
    geometry: bool = True,
) -> ExportResult:
    """Write a project layer to ``out`` (format by extension); a GeoPackage gains the layer."""
    out = Path(out)
    driver = EXPORT_DRIVERS.get(out.suffix.lower())
    if driver is None:
        raise InputError(
            f"cannot tell the format of {out.name}; use one of {', '.join(EXPORT_DRIVERS)}",
            zh=f"无法识别输出格式 {out.name}，可用：{', '.join(EXPORT_DRIVERS)}",
        )
    if layer not in EXPORTABLE_LAYERS:
        raise InputError(
            f"unknown layer {layer!r}; choose one of {', '.join(EXPORTABLE_LAYERS)}",
            zh=f"未知图层 {layer}，可选：{', '.join(EXPORTABLE_LAYERS)}",
        )
    frame = _layer_frame(store, layer, include_contacts=include_contacts).to_crs(io.parse_crs(crs))
    credit = store.get_setting("attribution", "") or ""
    if credit:
        frame["attribution"] = credit
    if driver == "CSV":
        write_csv(frame, out, excel=excel, geometry=geometry)
        return ExportResult(len(frame))
    if driver == "GPKG":
        _add_gpkg_layer(frame, out, layer=layer, credit=credit)
        return ExportResult(len(frame))
    out.unlink(missing_ok=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame.to_file(out, driver=driver, engine="pyogrio")
    return ExportResult(len(frame), _format_notes(caught))


def check_geopackage(path: Path) -> None:
    """Refuse to add a layer to an existing file that is not a GeoPackage (GDAL would replace it).

    A GeoPackage is an SQLite file whose header carries the application id ``GPKG`` (``GP10``,
    ``GP11`` in the first versions) at byte 68.
    """
    with Path(path).open("rb") as handle:
        header = handle.read(72)
    if not (header.startswith(b"SQLite format 3\x00") and header[68:72] in GPKG_IDS):
        raise InputError(
            f"cannot add a layer to {path.name}: it is not a GeoPackage; choose another name",
            zh=f"无法向 {path.name} 添加图层：它不是 GeoPackage 文件，请换一个文件名",
        )


GPKG_IDS = (b"GPKG", b"GP10", b"GP11")


def _add_gpkg_layer(frame: gpd.GeoDataFrame, out: Path, *, layer: str, credit: str) -> None:
    """Write ``layer`` into the GeoPackage ``out``: added beside its other layers, or replacing a
    layer of that name; the attribution goes into the package's and the layer's metadata."""
    from pyogrio.errors import DataLayerError, DataSourceError

    metadata = {"attribution": credit} if credit else None
    try:
        frame.to_file(
            out,
            driver="GPKG",
            engine="pyogrio",
            layer=layer,
            layer_metadata=metadata,
            dataset_metadata=metadata,
        )
    except (DataSourceError, DataLayerError) as error:
        raise InputError(
            f"cannot add the layer {layer} to {out.name}: it is not a GeoPackage ({error})",
            zh=f"无法向 {out.name} 添加图层 {layer}：它不是 GeoPackage 文件",
        ) from None


def _layer_frame(store: Store, layer: str, *, include_contacts: bool) -> gpd.GeoDataFrame:
    frame = read_buildings_with_grids(store) if layer == "buildings" else store.read_layer(layer)
    return public_worker_columns(frame, include_contacts=include_contacts)


def _format_notes(caught: list[warnings.WarningMessage]) -> list[tuple[str, str]]:
    """GDAL's and pyogrio's warnings about a format's limits, each kind once, in both languages."""
    text = " ".join(str(w.message) for w in caught)
    notes = []
    if "truncated when saved" in text or "laundered field name" in text:
        notes.append(
            (
                "field names longer than 10 characters were shortened (a Shapefile limit; "
                "GeoPackage keeps them)",
                "超过 10 个字符的字段名已被截短（Shapefile 的限制；GeoPackage 不受此限）",
            )
        )
    if "truncated to 254 characters" in text:
        notes.append(
            (
                "text longer than 254 characters was cut (a Shapefile limit; GeoPackage keeps it)",
                "超过 254 个字符的文本已被截断（Shapefile 的限制；GeoPackage 不受此限）",
            )
        )
    return notes


def write_csv(frame: gpd.GeoDataFrame, out: Path, *, excel: bool, geometry: bool) -> None:
    """A spreadsheet-ready CSV: local times with offset, geometry (WKT) last or left out."""
    table = pd.DataFrame(frame.drop(columns=frame.geometry.name))
    for column in table.columns:
        if isinstance(table[column].dtype, pd.DatetimeTZDtype):
            table[column] = local_times(table[column])
    if geometry:
        table["WKT"] = frame.geometry.to_wkt().to_numpy()  # the name GDAL and QGIS read
    encoding = "utf-8-sig" if excel else "utf-8"
    csv_safe_frame(table).to_csv(out, index=False, encoding=encoding)


def local_times(values: pd.Series) -> pd.Series:
    """Tz-aware times as ISO text in the district's zone, e.g. ``2026-08-01T08:30:00+08:00``."""
    shown = values.dt.tz_convert(LOCAL_TIME_ZONE)
    return pd.Series(
        [None if pd.isna(v) else v.isoformat(timespec="seconds") for v in shown],
        index=values.index,
        dtype=object,
    )


def grid_ledger(store: Store) -> pd.DataFrame:
    """网格台账: the published grids with community, worker, buildings, households and open cases.

    Where the project keeps household records (一户一档), a grid's households are counted from
    them on the buildings that have records, and the occupancy columns follow (以房管人: by
    type, residents, rented units, floating residents and share, contact households, visits):
    counts only, never a person.
    """
    grids = pd.DataFrame(published_grids(store))
    if "grid_code" not in grids.columns:
        grids = grids.reset_index(names="grid_code")
    grids["open_cases"] = grids["grid_code"].map(_open_cases(store)).fillna(0).astype(int)
    headers = dict(LEDGER_HEADERS)
    if occupancy.has_records(store):
        buildings = occupancy.building_facts(store, read_buildings_with_grids(store))
        grids = occupancy.grid_facts(grids, buildings, store)
        headers |= OCCUPANCY_HEADERS
    ledger = grids[[c for c in headers if c in grids.columns]].copy()
    for column in ("n_buildings", "households"):
        if column in ledger:
            ledger[column] = pd.to_numeric(ledger[column], errors="coerce").astype("Int64")
    return ledger.sort_values("grid_code").rename(columns=headers).reset_index(drop=True)


def _open_cases(store: Store) -> pd.Series:
    if not store.has_layer("incidents"):
        return pd.Series(dtype=int)
    cases = store.read_layer("incidents", columns=["grid_code", "status"])
    open_cases = cases[cases["status"].isin(OPEN_STATUSES)]
    return open_cases.groupby("grid_code").size()


def write_ledger(store: Store, out: str | Path) -> int:
    """Write the grid ledger as a one-sheet .xlsx; return the number of grids."""
    ledger = grid_ledger(store)
    write_xlsx(out, {"网格台账": ledger})
    return len(ledger)


#: Chinese headers of the incident statistics (``class_NN`` columns become 大类NN).
STATS_HEADERS = {
    "grid_code": "网格编码",
    "grid": "网格编码",
    "community": "社区",
    "worker": "网格员",
    "reported": "上报数",
    "registered": "立案数",
    "closed": "结案数",
    "closed_on_time": "按期结案数",
    "registration_rate": "立案率",
    "closure_rate": "结案率",
    "on_time_rate": "按期结案率",
    "overdue": "超期数",
    "median_handling_hours": "处置时长中位数（小时）",
}


def stats_sheet(stats: pd.DataFrame) -> pd.DataFrame:
    """Incident statistics (as :func:`geo.usecases.incidents.incident_statistics` returns them) with
    Chinese headers, rates and hours rounded for reading."""
    sheet = stats.reset_index()
    for column in ("registration_rate", "closure_rate", "on_time_rate"):
        if column in sheet:
            sheet[column] = sheet[column].round(4)
    if "median_handling_hours" in sheet:
        sheet["median_handling_hours"] = sheet["median_handling_hours"].round(1)
    names = {c: STATS_HEADERS.get(c, c) for c in sheet.columns}
    names.update(
        {c: "大类" + c.removeprefix("class_") for c in sheet.columns if str(c).startswith("class_")}
    )
    return sheet.rename(columns=names)


def write_stats(stats: pd.DataFrame, out: str | Path) -> int:
    """Write incident statistics as a one-sheet .xlsx with Chinese headers; return the rows."""
    sheet = stats_sheet(stats)
    write_xlsx(out, {"事件统计": sheet})
    return len(sheet)
