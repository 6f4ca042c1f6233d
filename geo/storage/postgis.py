"""The project's storage in PostgreSQL + PostGIS: the server form of :class:`~geo.storage.store.Store`.

A GeoPackage is one district in one file with one writer at a time; a province's streets share
one service, so they share one database. :class:`PostGISStore` keeps every promise the GeoPackage
store makes, with the same table and layer names, so that the rest of geo does not know which one
it holds:

- A layer is a table with ``fid`` (an identity key, 1, 2, ... in the order written), ``geom``
  declared ``geometry(<Type>, <SRID>)`` with a GiST index, and one column per attribute, typed by
  its dtype (``bigint``, ``double precision``, ``boolean``, ``timestamptz``, ``text``). What the
  GeoPackage keeps in ``gpkg_contents`` and ``gpkg_geometry_columns`` (declared type, SRID, the
  recorded extent, the last change) is the ``gridmap_layers`` table.
- Layer writes go through ``COPY ... FROM STDIN`` (psycopg's ``cursor.copy``, geometry as hex
  EWKB), not row-by-row inserts: a million buildings is one stream.
- Plans, assignments, edits, workers, settings, tokens and the audit log are plain tables made
  from :data:`geo.storage.store.metadata`; unique keys and lookup indexes as on a GeoPackage.
- :meth:`PostGISStore.transaction` is one PostgreSQL transaction: a failed write leaves nothing.
  Writers take one transaction-level advisory lock, as SQLite's ``BEGIN IMMEDIATE`` makes them
  queue, so the callers' read-check-write steps (plan revisions, issued grid codes) stay correct
  unchanged; readers never wait (MVCC).

Examples
--------
>>> store = open_store("postgresql://gridmap@db.example/suzhou")  # doctest: +SKIP
>>> store.read_layer("buildings").crs.to_epsg()  # doctest: +SKIP
4549
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import pyproj
import shapely
import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.engine.interfaces import BindTyping

from geo.errors import NotFound, StoreError
from geo.storage import gpkg
from geo.storage.store import (
    GeoPackageStore,
    _column,
    _filtered,
    _layer_changes,
    _plain_rows,
    _python_values,
    _restore_types,
    _table,
    _table_exists,
    _uniform_polygons,
    ensure_columns,
    ensure_lookup_indexes,
    ensure_unique_keys,
    layer_rows,
    metadata,
    quote,
    stored_time,
)

#: the advisory lock every writing transaction holds ("grid"), with its street's code (0: the
#: database's own project); REGISTRY_LOCK in its place guards adding a street
WRITE_LOCK = 0x67726964
REGISTRY_LOCK = -1

#: what gpkg_contents + gpkg_geometry_columns record for a GeoPackage layer
layer_contents = sa.Table(
    "gridmap_layers",
    sa.MetaData(),
    sa.Column("table_name", sa.Text, primary_key=True),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("geometry_type", sa.Text, nullable=False),  # the GeoPackage name: POLYGON, ...
    sa.Column("srs_id", sa.Integer, nullable=False),
    sa.Column("min_x", sa.Float),
    sa.Column("min_y", sa.Float),
    sa.Column("max_x", sa.Float),
    sa.Column("max_y", sa.Float),
    sa.Column("last_change", sa.Text, nullable=False),
    # the highest fid written (AUTOINCREMENT's sqlite_sequence): reset by a replace, in the
    # transaction, where resetting the column's sequence could not be undone by a rollback
    sa.Column("last_fid", sa.BigInteger, nullable=False, server_default="0"),
)

#: the streets a database holds, one schema each (``street_320581104``), in the public schema
divisions = sa.Table(
    "gridmap_divisions",
    sa.MetaData(schema="public"),
    sa.Column("code", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False, server_default=""),
    sa.Column("schema_name", sa.Text, nullable=False, unique=True),
    sa.Column("created_at", sa.Text, nullable=False),
)
#: names of divisions of any level (province, city, county, street ...), by their short code: a
#: county holds no schema, so its name cannot live in ``gridmap_divisions``
division_names = sa.Table(
    "gridmap_division_names",
    sa.MetaData(schema="public"),
    sa.Column("code", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Text, nullable=False),
)

_PG_TYPE_OF_DTYPE: dict[str, sa.types.TypeEngine] = {
    "b": sa.Boolean(),
    "i": sa.BigInteger(),
    "u": sa.BigInteger(),
    "f": sa.Double(),
    "M": sa.DateTime(timezone=True),
}
#: PostgreSQL's type names as the GeoPackage store's _restore_types knows them
_KIND_OF_PG_TYPE = {
    "boolean": "BOOLEAN",
    "bigint": "INTEGER",
    "integer": "INTEGER",
    "smallint": "INTEGER",
    "double precision": "REAL",
    "real": "REAL",
    "timestamp with time zone": "DATETIME",
    "timestamp without time zone": "DATETIME",
}
_POSTGIS_TYPE = {
    "POINT": "Point",
    "LINESTRING": "LineString",
    "POLYGON": "Polygon",
    "MULTIPOINT": "MultiPoint",
    "MULTILINESTRING": "MultiLineString",
    "MULTIPOLYGON": "MultiPolygon",
}
_DRIVER_PREFIXES = ("postgresql+psycopg://", "postgresql://", "postgres://")


class _Geometry(sa.types.UserDefinedType):
    """A PostGIS geometry column, ``geometry(Polygon,4549)`` or unconstrained."""

    cache_ok = True

    def __init__(self, spec: str | None) -> None:
        self.spec = spec

    def get_col_spec(self, **_kw: Any) -> str:
        return "geometry" if self.spec is None else f"geometry({self.spec})"


class _WriterBusy(Exception):
    """The message callers of ``transaction(wait=False)`` look for, as SQLite words it."""


class PostGISStore:
    """A project's storage in a PostgreSQL database with PostGIS (see the module)."""

    def __init__(self, url: str, *, division: str | None = None, create: bool = False) -> None:
        self.url = _driver_url(url)
        self.division = division
        #: whether opening added the street (a failed first import takes it away again)
        self.created_division = False
        self.schema = schema_of(division)
        self.identity = self.url if division is None else f"{self.url}#{division}"
        # the street's writers queue on the street's lock: other streets write at the same time
        self._lock_key = f"{WRITE_LOCK}, {int(division or 0)}"
        options = "-c timezone=UTC" + (
            "" if division is None else f" -c search_path={self.schema},public"
        )
        # every session in UTC: timestamptz values come back as UTC, as the GeoPackage stores them
        self.engine = sa.create_engine(
            self.url, pool_pre_ping=True, connect_args={"options": options}
        )
        # no ::VARCHAR / ::INTEGER casts on bound values: psycopg types them itself (a str as
        # "unknown"), so a stored time compares with a timestamptz column as it does with the
        # GeoPackage's text, and a 64-bit id is not cut to INTEGER
        self.engine.dialect.bind_typing = BindTyping.NONE
        shown = shown_url(self.url)
        try:
            with self.transaction() as conn:
                _require_postgis(conn, shown)
                if division is not None:
                    self.created_division = _open_division(
                        conn, division, create=create, shown=shown
                    )
                    # the street's own tables, even where the public schema holds a project too
                    conn.execution_options(schema_translate_map={None: self.schema})
                metadata.create_all(conn)
                layer_contents.create(conn, checkfirst=True)
                ensure_columns(conn)
                ensure_unique_keys(conn)
                ensure_lookup_indexes(conn)
        except sa.exc.OperationalError as error:
            self.engine.dispose()
            raise StoreError(
                f"cannot open the PostGIS database {shown}: {str(error.orig).strip()}",
                zh=f"无法打开 PostGIS 数据库 {shown}",
            ) from None
        except NotFound:
            self.engine.dispose()
            raise

    # -- transactions -------------------------------------------------------------------------
    @contextmanager
    def transaction(self, *, wait: bool = True) -> Iterator[Connection]:
        """One PostgreSQL transaction holding the writers' lock: all of it is written, or nothing.

        ``wait=False``: when another writer holds the lock, fail at once with
        ``OperationalError`` ("database is locked", as SQLite says it) instead of queueing.
        """
        with self.engine.begin() as conn:
            if wait:
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({self._lock_key})")
            elif not conn.exec_driver_sql(
                f"SELECT pg_try_advisory_xact_lock({self._lock_key})"
            ).scalar():
                raise sa.exc.OperationalError(
                    "pg_try_advisory_xact_lock", None, _WriterBusy("database is locked")
                )
            yield conn

    def drop_division(self) -> None:
        """Remove the street this store holds: its schema, every table in it, its registration."""
        if self.division is None:
            raise StoreError("only a street's store can be dropped, not the database's own")
        with self.transaction() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")
            conn.execute(divisions.delete().where(divisions.c.code == self.division))
        self.engine.dispose()

    # the same portable SQLAlchemy code as the GeoPackage store's
    reading = GeoPackageStore.reading
    count = GeoPackageStore.count
    get_setting = GeoPackageStore.get_setting
    all_settings = GeoPackageStore.all_settings
    set_setting = GeoPackageStore.set_setting
    log = GeoPackageStore.log

    # -- layers ---------------------------------------------------------------------------------
    def layers(self) -> list[str]:
        """The spatial layers in the database."""
        with self.reading() as conn:
            rows = conn.exec_driver_sql(
                'SELECT table_name FROM gridmap_layers ORDER BY table_name COLLATE "C"'
            )
            return [row[0] for row in rows]

    def has_layer(self, name: str, conn: Connection | None = None) -> bool:
        with self.reading(conn) as c:
            return _layer_row(c, name) is not None

    def layer_crs(self, name: str, conn: Connection | None = None) -> pyproj.CRS:
        with self.reading(conn) as c:
            row = _layer_row(c, name)
        if row is None:
            raise NotFound(
                f"the project file has no layer {name!r}", zh=f"项目文件中没有图层 {name}"
            )
        return pyproj.CRS.from_epsg(row.srs_id)

    def layer_extent(
        self, name: str, conn: Connection | None = None
    ) -> tuple[float, float, float, float] | None:
        """The extent recorded for a layer (in its CRS), None when empty or unknown."""
        with self.reading(conn) as c:
            row = _layer_row(c, name)
        if row is None or row.min_x is None:
            return None
        return (row.min_x, row.min_y, row.max_x, row.max_y)

    def layer_changes(
        self, names: tuple[str, ...], conn: Connection | None = None
    ) -> tuple[tuple[str, str], ...]:
        """``(layer, last change)`` of each of ``names`` that exists, by name (``gridmap_layers``)."""
        return _layer_changes(self, layer_contents, names, conn)

    def columns(self, name: str, conn: Connection | None = None) -> list[str]:
        """The column names of a layer or table, in order (empty when it does not exist)."""
        with self.reading(conn) as c:
            return [column for column, _kind in _column_types(c, name)]

    def layer_description(self, name: str, conn: Connection | None = None) -> str:
        """What the layer was described as when written ("" when none or no layer)."""
        with self.reading(conn) as c:
            row = _layer_row(c, name)
        return "" if row is None else row.description

    def write_layer(
        self,
        conn: Connection,
        name: str,
        frame: gpd.GeoDataFrame,
        *,
        mode: str = "replace",
        description: str = "",
        keep_fids: bool = False,
    ) -> None:
        """Write a GeoDataFrame as a feature layer inside the transaction ``conn`` (by COPY).

        ``mode="replace"`` drops and recreates the layer from the frame's columns;
        ``mode="append"`` adds rows to an existing layer (created if missing).
        ``keep_fids``: the rows keep the frame's index as their ``fid`` (a copied project).
        """
        if frame.crs is None:
            raise ValueError(f"layer {name!r}: a GeoDataFrame without CRS cannot be stored")
        exists = _table_exists(conn, name) and self.has_layer(name, conn)
        if mode == "append" and exists:
            stored = self.layer_crs(name, conn)
            if not stored.equals(frame.crs):
                frame = frame.to_crs(stored)
        srid = _ensure_srid(conn, frame.crs)
        attributes = pd.DataFrame(frame.drop(columns=frame.geometry.name))
        geometries = _uniform_polygons(np.asarray(frame.geometry.values, dtype=object))
        if mode == "replace" or not exists:
            _replace_layer(conn, name, attributes, geometries, srid=srid, description=description)
        else:
            geometries = _conform_to_layer(conn, name, geometries)
        fids = frame.index.to_numpy().tolist() if keep_fids else None
        last_fid = _copy_rows(conn, name, attributes, geometries, srid, fids=fids)
        _grow_extent(conn, name, geometries, last_fid)

    def read_layer(
        self,
        name: str,
        *,
        where: Mapping[str, Any] | None = None,
        columns: list[str] | None = None,
        conn: Connection | None = None,
    ) -> gpd.GeoDataFrame:
        """A feature layer as a GeoDataFrame (index: the layer's ``fid``)."""
        with self.reading(conn) as c:
            types = _declared_types(c, name)
            geometry = sa.func.ST_AsBinary(_column("geom"))
            frame, crs = layer_rows(
                self, c, name, types, geometry=geometry, where=where, columns=columns
            )
        geometry = shapely.from_wkb(np.asarray(frame.pop("geom").tolist() or [], dtype=object))
        frame = _restore_types(frame.set_index("fid"), types)
        return gpd.GeoDataFrame(frame, geometry=geometry, crs=crs)

    def delete_rows(self, conn: Connection, name: str, where: Mapping[str, Any]) -> int:
        """Delete the rows of a layer or table matching ``where`` (column = value, or IN a list)."""
        if not _table_exists(conn, name):
            return 0
        deleted = conn.execute(_filtered(sa.delete(_table(name)), where)).rowcount
        _touch(conn, name)
        return deleted

    def update_rows(
        self, conn: Connection, name: str, rows: pd.DataFrame, *, key: list[str]
    ) -> int:
        """Set the non-key columns of ``rows`` on the rows of ``name`` matching the ``key`` columns."""
        values = [c for c in rows.columns if c not in key]
        assignments_sql = ", ".join(f"{quote(c)} = %s" for c in values)
        match = " AND ".join(f"{quote(c)} = %s" for c in key)
        data = [_python_values(rows[c]) for c in [*values, *key]]
        params = list(zip(*data, strict=True))
        if not params:
            return 0
        conn.exec_driver_sql(f"UPDATE {quote(name)} SET {assignments_sql} WHERE {match}", params)
        _touch(conn, name)
        return len(params)

    def drop_layer(self, conn: Connection, name: str) -> None:
        conn.execute(sa.delete(layer_contents).where(layer_contents.c.table_name == name))
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {quote(name)}")

    def commit_watch(self) -> _Snapshot:
        """What tells a long-running reader that someone committed: the server's snapshot."""
        return _Snapshot(self.engine)

    # -- plain tables ---------------------------------------------------------------------------
    def insert_rows(self, conn: Connection, table: sa.Table, rows: pd.DataFrame) -> None:
        """Insert ``rows`` (columns named as the table's) into ``table`` by COPY, keys included
        where given; the key's sequence moves past them, so later inserts number on after them
        as in SQLite."""
        if rows.empty:
            return
        names = ", ".join(quote(c) for c in rows.columns)
        statement = f"COPY {quote(table.name)} ({names}) FROM STDIN"
        values = [_python_values(rows[c]) for c in rows.columns]
        _copy(conn, statement, zip(*values, strict=True))
        key = table.autoincrement_column
        if key is not None and key.name in rows.columns:
            conn.execute(
                sa.text(
                    "SELECT setval(pg_get_serial_sequence(:t, :c), "
                    f"(SELECT max({quote(key.name)}) FROM {quote(table.name)}))"
                ),
                {"t": quote(table.name), "c": key.name},
            )

    def read_table(
        self,
        table: sa.Table | str,
        *,
        where: Mapping[str, Any] | None = None,
        conn: Connection | None = None,
    ) -> pd.DataFrame:
        """A non-spatial table as a DataFrame, in key order (SQLite's rowid order there)."""
        name = table if isinstance(table, str) else table.name
        with self.reading(conn) as c:
            query = _filtered(sa.select(sa.text("*")).select_from(_table(name)), where)
            order = _row_order(c, name)
            result = c.execute(query.order_by(*map(_column, order)) if order else query)
            frame = pd.DataFrame(_plain_rows(result), columns=list(result.keys()))
        # a BOOLEAN reads back as SQLite gives it (0/1), so callers see one table either way
        flags = frame.select_dtypes("bool").columns
        return frame.astype(dict.fromkeys(flags, "int64")) if len(flags) else frame

    # -- rows written by plain INSERTs (the lean case intake, geo.incidents.intake) -------------
    def geometry_values(self, geometries: list[Any], *, srs_id: int) -> list[Any]:
        """The values a layer's ``geom`` column takes for these shapely geometries (None stays
        None) in a plain INSERT: hex EWKB, which carries the SRID and PostGIS reads as text."""
        values = np.asarray(geometries, dtype=object)
        present = ~shapely.is_missing(values)
        out: list[Any] = [None] * len(values)
        if present.any():
            ewkb = shapely.to_wkb(
                shapely.set_srid(values[present], srs_id), hex=True, include_srid=True
            )
            for at, value in zip(np.flatnonzero(present).tolist(), ewkb.tolist(), strict=True):
                out[at] = value
        return out

    def widen_extent(
        self, conn: Connection, name: str, bounds: tuple[float, float, float, float]
    ) -> None:
        """Widen the layer's recorded extent by ``bounds`` (min x, min y, max x, max y) and mark
        it changed, as an append does, in one statement of the caller's transaction."""
        extent = layer_contents.c
        conn.execute(
            sa.update(layer_contents)
            .where(extent.table_name == name)
            .values(
                min_x=sa.func.least(sa.func.coalesce(extent.min_x, bounds[0]), bounds[0]),
                min_y=sa.func.least(sa.func.coalesce(extent.min_y, bounds[1]), bounds[1]),
                max_x=sa.func.greatest(sa.func.coalesce(extent.max_x, bounds[2]), bounds[2]),
                max_y=sa.func.greatest(sa.func.coalesce(extent.max_y, bounds[3]), bounds[3]),
                last_change=_now(),
            )
        )


class _Snapshot:
    """The server's current snapshot (``xmin:xmax:in-progress ids``) on a connection of the
    watch's own: every write takes a transaction id, so a write committed since the last look
    moved ``xmax`` or left the in-progress list; reads take none. Writes to other databases of
    the cluster move it too (a "maybe", which the caller's fingerprint settles)."""

    def __init__(self, engine: sa.Engine) -> None:
        self._conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")

    def __call__(self) -> object:
        return self._conn.exec_driver_sql("SELECT pg_current_snapshot()::text").scalar()

    def close(self) -> None:
        self._conn.close()


def schema_of(division: str | None) -> str:
    """The schema holding a street's tables; the database's own (public) without a division."""
    if division is None:
        return "public"
    if not (
        division.isascii() and division.isdigit() and len(division) == 9
    ):  # the caller parsed it; SQL needs it so
        raise StoreError(f"a street's schema needs its 9-digit code, not {division[:40]!r}")
    return f"street_{division}"


def registered_divisions(url: str, *, under: str | None = None) -> pd.DataFrame:
    """The streets a PostGIS database holds (code, name, schema_name, created_at), by code;
    ``under``: only the streets whose code starts with it."""
    engine = sa.create_engine(_driver_url(url))
    try:
        with engine.connect() as conn:
            if not conn.exec_driver_sql("SELECT to_regclass('public.gridmap_divisions')").scalar():
                return pd.DataFrame(columns=[c.name for c in divisions.c])
            query = sa.select(divisions).order_by(divisions.c.code)
            if under:
                query = query.where(divisions.c.code.startswith(under, autoescape=True))
            return pd.DataFrame(
                conn.execute(query).mappings().all(), columns=[c.name for c in divisions.c]
            )
    except sa.exc.OperationalError as error:
        raise StoreError(f"cannot open the PostGIS database: {str(error.orig).strip()}") from None
    finally:
        engine.dispose()


def stored_division_names(url: str) -> dict[str, str]:
    """The names given to divisions in a PostGIS database (code -> name), none when never named."""
    engine = sa.create_engine(_driver_url(url))
    try:
        with engine.connect() as conn:
            if not conn.exec_driver_sql(
                "SELECT to_regclass('public.gridmap_division_names')"
            ).scalar():
                return {}
            rows = conn.execute(sa.select(division_names.c.code, division_names.c.name))
            return {str(row.code): str(row.name) for row in rows}
    except sa.exc.OperationalError as error:
        raise StoreError(f"cannot open the PostGIS database: {str(error.orig).strip()}") from None
    finally:
        engine.dispose()


def name_division(url: str, code: str, name: str) -> None:
    """Give the division ``code`` (any level, parsed by the caller) the name ``name`` in one
    transaction; a registered street's row in ``gridmap_divisions`` carries it too."""
    from sqlalchemy.dialects.postgresql import insert

    engine = sa.create_engine(_driver_url(url))
    try:
        with engine.begin() as conn:
            division_names.create(conn, checkfirst=True)
            row = {"code": code, "name": name, "updated_at": _now()}
            conn.execute(
                insert(division_names)
                .values(row)
                .on_conflict_do_update(index_elements=["code"], set_=row)
            )
            if conn.exec_driver_sql("SELECT to_regclass('public.gridmap_divisions')").scalar():
                conn.execute(divisions.update().where(divisions.c.code == code).values(name=name))
    except sa.exc.OperationalError as error:
        raise StoreError(f"cannot open the PostGIS database: {str(error.orig).strip()}") from None
    finally:
        engine.dispose()


def no_such_street(shown: str, division: str) -> NotFound:
    """The one answer for a street a database does not hold (or a token may not see)."""
    return NotFound(
        f"the database {shown} holds no street {division}; import it first with "
        f"'gridmap import ... --division {division}'",
        zh=f"数据库中没有街道 {division}：请先用 gridmap import ... --division {division} 导入",
    )


def shown_url(url: str) -> str:
    """``url`` as messages show it: the driver's form, the password hidden."""
    return sa.engine.make_url(_driver_url(url)).render_as_string(hide_password=True)


def _open_division(conn: Connection, division: str, *, create: bool, shown: str) -> bool:
    """Check that the street is in the database, or (``create``) add its schema and register it
    (True: it was added). Adding takes the registry's lock: workers adding streets at once
    would otherwise race to create the registry itself."""
    if _registered(conn, division):
        return False
    if not create:
        raise no_such_street(shown, division)
    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({WRITE_LOCK}, {REGISTRY_LOCK})")
    divisions.create(conn, checkfirst=True)
    if _registered(conn, division):  # another process added it while this one waited
        return False
    conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {schema_of(division)}")
    conn.execute(
        divisions.insert().values(code=division, schema_name=schema_of(division), created_at=_now())
    )
    return True


def _registered(conn: Connection, division: str) -> bool:
    if not conn.exec_driver_sql("SELECT to_regclass('public.gridmap_divisions')").scalar():
        return False
    found = conn.execute(sa.select(divisions.c.code).where(divisions.c.code == division))
    return found.first() is not None


def _driver_url(url: str) -> str:
    """``url`` for SQLAlchemy's psycopg 3 driver (the one whose COPY this module uses)."""
    for prefix in _DRIVER_PREFIXES:
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    raise StoreError(
        f"the PostGIS store speaks psycopg 3: give a postgresql:// URL, not {url.split(':')[0]}",
        zh="PostGIS 存储请使用 postgresql:// 地址",
    )


def _require_postgis(conn: Connection, shown: str) -> None:
    has = conn.exec_driver_sql("SELECT count(*) FROM pg_extension WHERE extname = 'postgis'")
    if has.scalar():
        return
    try:
        with conn.begin_nested():
            conn.exec_driver_sql("CREATE EXTENSION postgis")
    except sa.exc.DBAPIError:
        raise StoreError(
            f"the database {shown} has no PostGIS and this user may not add it: "
            "run CREATE EXTENSION postgis as its owner",
            zh=f"数据库 {shown} 未安装 PostGIS：请由其所有者执行 CREATE EXTENSION postgis",
        ) from None


def _layer_row(conn: Connection, name: str) -> sa.Row | None:
    return conn.execute(
        sa.select(layer_contents).where(layer_contents.c.table_name == name)
    ).first()


def _ensure_srid(conn: Connection, crs: pyproj.CRS) -> int:
    """The EPSG code of ``crs``, added to ``spatial_ref_sys`` where PostGIS lacks it."""
    authority = crs.to_authority(min_confidence=90)
    if authority is None or authority[0] != "EPSG":
        raise ValueError(f"the project file stores EPSG coordinate systems only, not {crs.name!r}")
    code = int(authority[1])
    known = conn.execute(
        sa.text("SELECT count(*) FROM spatial_ref_sys WHERE srid = :c"), {"c": code}
    ).scalar()
    if not known:
        conn.execute(
            sa.text(
                "INSERT INTO spatial_ref_sys (srid, auth_name, auth_srid, srtext, proj4text) "
                "VALUES (:c, 'EPSG', :c, :wkt, :proj) ON CONFLICT (srid) DO NOTHING"
            ),
            {"c": code, "wkt": crs.to_wkt("WKT1_GDAL"), "proj": crs.to_proj4()},
        )
    return code


def _column_spec(geometries: np.ndarray, srid: int) -> str:
    """``Polygon,4549`` for a column of polygons; ``Geometry`` where kinds or dimensions mix."""
    present = geometries[~shapely.is_missing(geometries)]
    has_z = shapely.has_z(present[~shapely.is_empty(present)])
    kind = _POSTGIS_TYPE.get(gpkg.geometry_type_name(geometries), "Geometry")
    if has_z.any() and not has_z.all():
        return f"Geometry,{srid}"
    return f"{kind}{'Z' if has_z.any() else ''},{srid}"


def _replace_layer(
    conn: Connection,
    name: str,
    attributes: pd.DataFrame,
    geometries: np.ndarray,
    *,
    srid: int,
    description: str,
) -> None:
    """Empty the layer for new rows, with a fresh row in ``gridmap_layers``.

    Where the table already has the frame's columns and types, its rows are deleted: readers
    keep reading the old rows until the commit (MVCC). Otherwise it is dropped and made again
    with its GiST index; a DROP locks the table, so readers of that layer wait for the commit.
    """
    table = sa.Table(
        _quoted(name),
        sa.MetaData(),
        sa.Column(_quoted("fid"), sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column(_quoted("geom"), _Geometry(_column_spec(geometries, srid))),
        *(sa.Column(_quoted(c), _pg_type(attributes[c])) for c in attributes.columns),
    )
    if _column_types(conn, name) == _column_types_of(conn, table):
        conn.execute(sa.delete(_table(name)))
    else:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {quote(name)}")
        conn.execute(sa.schema.CreateTable(table))
        index = quote(f"{name}_geom_gist")
        conn.exec_driver_sql(f"CREATE INDEX {index} ON {quote(name)} USING GIST (geom)")
    conn.execute(sa.delete(layer_contents).where(layer_contents.c.table_name == name))
    conn.execute(
        sa.insert(layer_contents).values(
            table_name=name,
            description=description,
            geometry_type=gpkg.geometry_type_name(geometries),
            srs_id=srid,
            last_change=_now(),
        )
    )


def _column_types(conn: Connection, name: str) -> list[tuple[str, str]]:
    """The table's columns with their declared types, as PostgreSQL names them."""
    rows = conn.execute(
        sa.text(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = to_regclass(current_schema() || '.' || quote_ident(:t)) "
            "AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
        ),
        {"t": name},
    )
    return [(column, kind.lower()) for column, kind in rows]


def _column_types_of(conn: Connection, table: sa.Table) -> list[tuple[str, str]]:
    return [(c.name, c.type.compile(dialect=conn.dialect).lower()) for c in table.columns]


def _quoted(name: object) -> sa.sql.quoted_name:
    return sa.sql.quoted_name(str(name), True)


def _pg_type(series: pd.Series) -> sa.types.TypeEngine:
    if isinstance(series.dtype, pd.BooleanDtype):
        return sa.Boolean()
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        return sa.DateTime(timezone=True)
    return _PG_TYPE_OF_DTYPE.get(series.dtype.kind, sa.Text())


def _copy_rows(
    conn: Connection,
    name: str,
    attributes: pd.DataFrame,
    geometries: np.ndarray,
    srid: int,
    *,
    fids: list[int] | None = None,
) -> int:
    """Stream the rows into the layer with COPY (geometry as hex EWKB, which carries the SRID),
    numbered on from the layer's last fid as AUTOINCREMENT numbers them (or ``fids`` when
    given); the new last fid."""
    first = _last_fid(conn, name) + 1
    if not len(geometries):
        return first - 1
    if fids is None:
        fids = list(range(first, first + len(geometries)))
    ewkb = shapely.to_wkb(shapely.set_srid(geometries, srid), hex=True, include_srid=True)
    values = [_python_values(attributes[c]) for c in attributes.columns]
    names = ", ".join(quote(c) for c in ["fid", "geom", *attributes.columns])
    statement = f"COPY {quote(name)} ({names}) FROM STDIN"
    _copy(conn, statement, zip(fids, ewkb.tolist(), *values, strict=True))
    last = max(first - 1, *fids)
    # rows inserted without a fid (by SQL elsewhere) take the identity's next value: keep it past
    # every fid written here (never lowered, so a rollback cannot make it hand out a used fid)
    conn.execute(
        sa.text(
            "SELECT setval(s, greatest(:last, coalesce(pg_sequence_last_value(s), 0))) "
            "FROM (SELECT pg_get_serial_sequence(:q, 'fid')::regclass AS s) AS q"
        ),
        {"last": last, "q": quote(name)},
    )
    return last


def _copy(conn: Connection, statement: str, rows: Iterable[tuple]) -> None:
    """``COPY ... FROM STDIN`` of ``rows`` on the transaction's connection."""
    raw = conn.connection.driver_connection
    try:
        with raw.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)
    except psycopg.Error as error:  # as SQLAlchemy reports it for a statement (IntegrityError...)
        raise sa.exc.DBAPIError.instance(statement, None, error, psycopg.Error) from None


def _last_fid(conn: Connection, name: str) -> int:
    """The highest fid the layer has had since it was (re)made: recorded, or in its rows."""
    recorded = _layer_row(conn, name).last_fid
    highest = conn.execute(sa.select(sa.func.max(_column("fid"))).select_from(_table(name)))
    return max(recorded, highest.scalar() or 0)


def _conform_to_layer(conn: Connection, name: str, geometries: np.ndarray) -> np.ndarray:
    """Appended geometries fit the layer as on a GeoPackage: polygons join a MULTIPOLYGON layer
    as MultiPolygons; other kinds (or dimensions) widen the column to plain ``geometry``."""
    declared = _layer_row(conn, name).geometry_type
    type_ids = shapely.get_type_id(geometries)
    if declared == "MULTIPOLYGON" and (type_ids == 3).any():
        geometries = geometries.copy()
        geometries[type_ids == 3] = [shapely.MultiPolygon([g]) for g in geometries[type_ids == 3]]
    elif declared == "POLYGON" and (type_ids == 6).any():
        conn.execute(
            sa.update(layer_contents)
            .where(layer_contents.c.table_name == name)
            .values(geometry_type="MULTIPOLYGON")
        )
    _widen_column(conn, name, geometries)
    return geometries


def _widen_column(conn: Connection, name: str, geometries: np.ndarray) -> None:
    """Make the geometry column plain ``geometry`` where ``geometries`` do not fit its type
    (a GeoPackage layer takes any kind; the SRID stays recorded in ``gridmap_layers``)."""
    if shapely.is_missing(geometries).all():
        return
    column = conn.execute(
        sa.text(
            "SELECT type, coord_dimension FROM geometry_columns WHERE f_table_schema = "
            "current_schema() AND f_table_name = :t AND f_geometry_column = 'geom'"
        ),
        {"t": name},
    ).first()
    if column is None or column.type == "GEOMETRY":
        return
    wanted = _column_spec(geometries, 0).split(",")[0].upper()
    held = column.type + ("Z" if column.coord_dimension > 2 else "")
    if wanted != held:
        conn.exec_driver_sql(f"ALTER TABLE {quote(name)} ALTER COLUMN geom TYPE geometry")


def _grow_extent(conn: Connection, name: str, geometries: np.ndarray, last_fid: int) -> None:
    """Widen the layer's recorded extent by the rows just written; record the last fid and
    the change."""
    present = geometries[~shapely.is_missing(geometries) & ~shapely.is_empty(geometries)]
    row = _layer_row(conn, name)
    bounds = (row.min_x, row.min_y, row.max_x, row.max_y)
    if len(present):
        minx, miny, maxx, maxy = shapely.total_bounds(present).tolist()
        if row.min_x is not None:
            minx, miny = min(minx, row.min_x), min(miny, row.min_y)
            maxx, maxy = max(maxx, row.max_x), max(maxy, row.max_y)
        bounds = (minx, miny, maxx, maxy)
    conn.execute(
        sa.update(layer_contents)
        .where(layer_contents.c.table_name == name)
        .values(dict(zip(("min_x", "min_y", "max_x", "max_y"), bounds, strict=True)))
        .values(last_change=_now(), last_fid=last_fid)
    )


def _touch(conn: Connection, name: str) -> None:
    """Mark a layer changed (what a cache keyed on ``last_change`` watches)."""
    conn.execute(
        sa.update(layer_contents)
        .where(layer_contents.c.table_name == name)
        .values(last_change=_now())
    )


def _now() -> str:
    return stored_time(pd.Timestamp.now(tz="UTC"))


def _declared_types(conn: Connection, name: str) -> dict[str, str]:
    """The layer's columns in order, each with the type name :func:`_restore_types` reads."""
    return {
        column: _KIND_OF_PG_TYPE.get(kind, "GEOMETRY" if kind.startswith("geometry") else "TEXT")
        for column, kind in _column_types(conn, name)
    }


def _row_order(conn: Connection, name: str) -> list[str]:
    """The columns that give a table's rows a stable order: its key, or a layer's ``fid``."""
    known = metadata.tables.get(name)
    if known is not None:
        return [column.name for column in known.primary_key.columns]
    return ["fid"] if "fid" in _declared_types(conn, name) else []
