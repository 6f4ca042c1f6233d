"""A GeoPackage project copied into a PostGIS database, through the store interface only.

Why: the intake tests and bench/api.py need a district that is imported, partitioned and staffed
on PostGIS; building one there runs every use case on PostGIS, which other work is still making
portable. A copy made with :meth:`Store.read_layer`/:meth:`Store.write_layer` (COPY) and the
plain tables row by row gives the same layers and tables in seconds, whatever the state of that
work. (Issue #18's ``gridmap copy`` will do this for users; this is a test helper, not it.)
"""

from __future__ import annotations

import sqlalchemy as sa

from geo.storage.store import (
    Store,
    ensure_lookup_indexes,
    ensure_unique_keys,
    metadata,
    open_store,
    quote,
)


def copy_project(source: Store, url: str) -> Store:
    """Every layer and plain table of ``source`` written into the PostGIS database ``url``."""
    target = open_store(url)
    with target.transaction() as conn:
        for name in source.layers():
            frame = source.read_layer(name)
            target.write_layer(conn, name, frame.reset_index(drop=True), mode="replace")
        ensure_unique_keys(conn)
        ensure_lookup_indexes(conn)
        for table in metadata.sorted_tables:
            _copy_table(source, conn, table)
    return target


def _copy_table(source: Store, conn: sa.Connection, table: sa.Table) -> None:
    frame = source.read_table(table)
    if frame.empty:
        return
    flags = [c.name for c in table.columns if isinstance(c.type, sa.Boolean)]
    rows = frame.astype(object).where(frame.notna(), None).to_dict("records")
    for row in rows:
        for flag in flags:
            row[flag] = None if row.get(flag) is None else bool(row[flag])
    conn.execute(sa.delete(table))
    conn.execute(sa.insert(table), rows)
    for column in table.primary_key.columns:
        if (
            column.autoincrement is True
            or (column.autoincrement == "auto" and len(table.primary_key.columns) == 1)
        ) and isinstance(column.type, sa.Integer):
            conn.exec_driver_sql(
                f"SELECT setval(pg_get_serial_sequence('{quote(table.name)}', "
                f"'{column.name}'), (SELECT max({quote(column.name)}) FROM "
                f"{quote(table.name)}))"
            )
