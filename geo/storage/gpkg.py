"""GeoPackage geometry blobs and container metadata, written through SQLAlchemy.

Why not pyogrio for the project file? GDAL opens its own SQLite connection, so a layer it writes
cannot join the transaction that also writes plans, assignments and the audit log. gridmap writes
every table of the project file through one SQLAlchemy connection instead, and this module does the
two small things that takes: encode/decode the GeoPackage binary geometry header (OGC 12-128r18,
section 2.1.3) around shapely's WKB, and keep the ``gpkg_*`` metadata tables that QGIS and GDAL
read. The result opens in QGIS and in ``pyogrio.read_dataframe`` like any other GeoPackage.

Examples
--------
>>> import shapely
>>> blobs = encode_geometries([shapely.Point(1, 2)], srs_id=4326)
>>> decode_geometries(blobs)[0].wkt
'POINT (1 2)'
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pyproj
import shapely
from sqlalchemy import Connection, text

from geo.errors import InputError, StoreError

APPLICATION_ID = 0x47504B47  # "GPKG"
USER_VERSION = 10300  # GeoPackage 1.3

# flags byte: bit 0 little endian, bits 1-3 envelope kind (1 = minx, maxx, miny, maxy), bit 4 empty
_FLAGS_LE_XY_ENVELOPE = 0b0000_0011
_FLAGS_EMPTY = 0b0001_0001
_HEADER = np.dtype(
    [("magic", "S2"), ("version", "u1"), ("flags", "u1"), ("srs_id", "<i4"), ("envelope", "<f8", 4)]
)
_ENVELOPE_BYTES = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}

_CORE_TABLES = (
    """CREATE TABLE IF NOT EXISTS gpkg_spatial_ref_sys (
        srs_name TEXT NOT NULL, srs_id INTEGER PRIMARY KEY, organization TEXT NOT NULL,
        organization_coordsys_id INTEGER NOT NULL, definition TEXT NOT NULL, description TEXT)""",
    """CREATE TABLE IF NOT EXISTS gpkg_contents (
        table_name TEXT NOT NULL PRIMARY KEY, data_type TEXT NOT NULL, identifier TEXT UNIQUE,
        description TEXT DEFAULT '',
        last_change DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
        min_x DOUBLE, min_y DOUBLE, max_x DOUBLE, max_y DOUBLE,
        srs_id INTEGER REFERENCES gpkg_spatial_ref_sys(srs_id))""",
    """CREATE TABLE IF NOT EXISTS gpkg_geometry_columns (
        table_name TEXT NOT NULL, column_name TEXT NOT NULL, geometry_type_name TEXT NOT NULL,
        srs_id INTEGER NOT NULL, z TINYINT NOT NULL, m TINYINT NOT NULL,
        CONSTRAINT pk_geom_cols PRIMARY KEY (table_name, column_name),
        CONSTRAINT fk_gc_tn FOREIGN KEY (table_name) REFERENCES gpkg_contents(table_name),
        CONSTRAINT fk_gc_srs FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys (srs_id))""",
)
_REQUIRED_SRS = (
    (
        "Undefined cartesian SRS",
        -1,
        "NONE",
        -1,
        "undefined",
        "undefined cartesian coordinate reference system",
    ),
    (
        "Undefined geographic SRS",
        0,
        "NONE",
        0,
        "undefined",
        "undefined geographic coordinate reference system",
    ),
)


def encode_geometries(geometries: Sequence | np.ndarray, *, srs_id: int) -> list[bytes | None]:
    """GeoPackage binary blobs (header + ISO WKB) for an array of shapely geometries.

    Missing geometries (``None``) stay ``None``; empty ones get the header's empty flag.
    """
    geometries = np.asarray(geometries, dtype=object)
    missing = shapely.is_missing(geometries)
    empty = shapely.is_empty(geometries) & ~missing
    header = np.zeros(len(geometries), dtype=_HEADER)
    header["magic"] = b"GP"
    header["flags"] = np.where(empty, _FLAGS_EMPTY, _FLAGS_LE_XY_ENVELOPE)
    header["srs_id"] = srs_id
    bounds = shapely.bounds(geometries)  # minx, miny, maxx, maxy; NaN for empty/missing
    header["envelope"] = bounds[:, [0, 2, 1, 3]]
    wkb = shapely.to_wkb(geometries, byte_order=1, flavor="iso")
    header_bytes = header.tobytes()
    size = _HEADER.itemsize
    blobs: list[bytes | None] = []
    for i, (geometry_wkb, is_missing, is_empty) in enumerate(zip(wkb, missing, empty, strict=True)):
        if is_missing:
            blobs.append(None)
        else:
            # an empty geometry's header carries no envelope (8 bytes only)
            head = header_bytes[i * size : i * size + (8 if is_empty else size)]
            blobs.append(head + geometry_wkb)
    return blobs


def decode_geometries(blobs: Sequence[bytes | None]) -> np.ndarray:
    """Shapely geometries from GeoPackage blobs (``None`` stays missing)."""
    wkb: list[bytes | None] = []
    for blob in blobs:
        if blob is None:
            wkb.append(None)
            continue
        flags = blob[3]
        wkb.append(bytes(blob[8 + _ENVELOPE_BYTES[(flags >> 1) & 0b111] :]))
    return shapely.from_wkb(np.asarray(wkb, dtype=object))


def initialise(conn: Connection) -> None:
    """Make an empty SQLite database a GeoPackage (idempotent)."""
    conn.exec_driver_sql(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.exec_driver_sql(f"PRAGMA user_version = {USER_VERSION}")
    for ddl in _CORE_TABLES:
        conn.exec_driver_sql(ddl)
    conn.exec_driver_sql(
        "INSERT OR IGNORE INTO gpkg_spatial_ref_sys VALUES (?, ?, ?, ?, ?, ?)", list(_REQUIRED_SRS)
    )
    ensure_srs(conn, pyproj.CRS.from_epsg(4326))


def ensure_srs(conn: Connection, crs: pyproj.CRS) -> int:
    """Register ``crs`` in ``gpkg_spatial_ref_sys`` and return its ``srs_id`` (the EPSG code)."""
    authority = crs.to_authority(min_confidence=90)
    if authority is None or authority[0] != "EPSG":
        raise ValueError(f"the project file stores EPSG coordinate systems only, not {crs.name!r}")
    code = int(authority[1])
    conn.execute(
        text(
            "INSERT OR IGNORE INTO gpkg_spatial_ref_sys VALUES "
            "(:name, :code, 'EPSG', :code, :definition, :description)"
        ),
        {
            "name": crs.name,
            "code": code,
            "definition": crs.to_wkt("WKT1_GDAL"),
            "description": crs.name,
        },
    )
    return code


def register_features(
    conn: Connection,
    table: str,
    *,
    geometry_type: str,
    srs_id: int,
    bounds: Sequence[float] | None,
    description: str = "",
) -> None:
    """Announce a feature table to QGIS/GDAL (``gpkg_contents`` + ``gpkg_geometry_columns``)."""
    unregister(conn, table)
    minx, miny, maxx, maxy = bounds if bounds is not None else (None, None, None, None)
    conn.execute(
        text(
            "INSERT INTO gpkg_contents (table_name, data_type, identifier, description, "
            "min_x, min_y, max_x, max_y, srs_id) "
            "VALUES (:t, 'features', :t, :d, :minx, :miny, :maxx, :maxy, :srs)"
        ),
        {
            "t": table,
            "d": description,
            "minx": minx,
            "miny": miny,
            "maxx": maxx,
            "maxy": maxy,
            "srs": srs_id,
        },
    )
    conn.execute(
        text("INSERT INTO gpkg_geometry_columns VALUES (:t, 'geom', :g, :srs, 0, 0)"),
        {"t": table, "g": geometry_type, "srs": srs_id},
    )


def register_attributes(conn: Connection, table: str, *, description: str = "") -> None:
    """Announce a non-spatial table, so that QGIS lists it beside the layers."""
    conn.execute(
        text(
            "INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, description) "
            "VALUES (:t, 'attributes', :t, :d)"
        ),
        {"t": table, "d": description},
    )


def unregister(conn: Connection, table: str) -> None:
    """Forget a table in the metadata (before it is dropped or rewritten)."""
    conn.execute(text("DELETE FROM gpkg_geometry_columns WHERE table_name = :t"), {"t": table})
    conn.execute(text("DELETE FROM gpkg_contents WHERE table_name = :t"), {"t": table})


def update_extent(conn: Connection, table: str, bounds: Sequence[float] | None) -> None:
    """Keep the layer extent QGIS zooms to in step with the data."""
    minx, miny, maxx, maxy = bounds if bounds is not None else (None, None, None, None)
    conn.execute(
        text(
            "UPDATE gpkg_contents SET min_x = :a, min_y = :b, max_x = :c, max_y = :d, "
            "last_change = strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE table_name = :t"
        ),
        {"a": minx, "b": miny, "c": maxx, "d": maxy, "t": table},
    )


def geometry_type_name(geometries: np.ndarray) -> str:
    """The GeoPackage geometry type for a column (``GEOMETRY`` when mixed)."""
    kinds = set(shapely.get_type_id(geometries[~shapely.is_missing(geometries)]).tolist())
    names = {
        0: "POINT",
        1: "LINESTRING",
        3: "POLYGON",
        4: "MULTIPOINT",
        5: "MULTILINESTRING",
        6: "MULTIPOLYGON",
    }
    if kinds <= {3, 6} and kinds:
        return "MULTIPOLYGON" if 6 in kinds else "POLYGON"
    if len(kinds) == 1:
        return names.get(kinds.pop(), "GEOMETRY")
    return "GEOMETRY"


def check_project_file(path: Path) -> None:
    """Refuse an existing file that is no gridmap project, read-only and before anything is
    written to it: an SQLite file that is no GeoPackage (:class:`StoreError`), or a GeoPackage
    of other data, which a command would add gridmap's tables to (:class:`InputError`). A
    project, a new or empty file, or a file that is no SQLite at all (opening it says so) passes.
    """
    if not path.is_file():
        return
    try:
        with closing(sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True)) as c:
            tables = {row[0] for row in c.execute("SELECT name FROM sqlite_master")}
            application_id = c.execute("PRAGMA application_id").fetchone()[0]
            foreign = "gpkg_contents" in tables and "settings" not in tables
            layers = (
                [r[0] for r in c.execute("SELECT table_name FROM gpkg_contents")] if foreign else []
            )
    except sqlite3.DatabaseError:
        return
    if tables and application_id != APPLICATION_ID:
        raise StoreError(
            f"{path} is an SQLite file but not a GeoPackage",
            zh=f"{path} 是 SQLite 文件，但不是 GeoPackage",
        )
    if layers:
        shown = ", ".join(layers[:5])
        raise InputError(
            f"{path.name} is a GeoPackage of other data (layers {shown}), not a gridmap project: "
            "give a new file with --db",
            zh=f"{path.name} 是其他数据的 GeoPackage（图层 {shown}），不是 gridmap 项目文件："
            "请用 --db 指定新文件",
        )
