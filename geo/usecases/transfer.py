"""Moving a project between backends: a street's GeoPackage into PostGIS, and back, nothing lost.

``gridmap copy SRC DST`` calls :func:`copy_project`. Both ends are :class:`~geo.storage.store.Store`
objects, so the copy is backend-blind: every layer is read whole and written with its ``fid``
kept (cases, buildings and grids keep their row numbers), every table of the schema (plans,
assignments, the edit history with its undo patches, issued grid codes, workers, case events,
settings, tokens, the audit log, kept locate indexes, household records) is inserted with its
keys kept, and the target's counters move past them, so the next plan, edit or event numbers on
as it would have in the source. The copy is one transaction on the target: a failure leaves it
empty. It writes no audit line of its own, so that a round trip gives back the same tables.

Examples
--------
>>> from geo.storage.store import open_store  # doctest: +SKIP
>>> copy_project(open_store("street.gpkg"), open_store("postgresql://gridmap@db/province"))
... # doctest: +SKIP
CopyOutcome(layers={'buildings': 8242, ...}, tables={'plans': 1, ...})
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy import Connection

from geo.errors import Conflict
from geo.storage.store import Store, ensure_lookup_indexes, ensure_unique_keys, metadata


@dataclass(frozen=True)
class CopyOutcome:
    """Rows copied per layer and per table."""

    layers: dict[str, int]
    tables: dict[str, int]


def copy_project(source: Store, target: Store) -> CopyOutcome:
    """Copy every layer and table of ``source`` into the empty store ``target``.

    Raises
    ------
    Conflict
        When ``target`` already holds a layer or a row: a copy never merges two projects.
    """
    _refuse_non_empty(target)
    tables = project_tables(source)
    layers: dict[str, int] = {}
    copied: dict[str, int] = {}
    with source.reading() as read, target.transaction() as conn:
        for name in source.layers():
            frame = source.read_layer(name, conn=read)
            description = source.layer_description(name, read)
            target.write_layer(conn, name, frame, description=description, keep_fids=True)
            layers[name] = len(frame)
        ensure_unique_keys(conn)
        ensure_lookup_indexes(conn)
        for table in tables:
            copied[table.name] = _copy_table(source, target, read, conn, table)
    return CopyOutcome(layers, copied)


def project_tables(store: Store) -> list[sa.Table]:
    """The non-spatial tables of the project: the schema's, and the household records' where
    the project has them (made on first use)."""
    from geo.people import households  # its tables exist only where households were imported

    extra = [t for t in households.metadata.sorted_tables if store.columns(t.name)]
    return [*metadata.sorted_tables, *extra]


def _refuse_non_empty(target: Store) -> None:
    held = target.layers() or [t.name for t in project_tables(target) if target.count(t.name)]
    if held:
        raise Conflict(
            f"the target already holds a project ({', '.join(held[:3])}); copy into an empty "
            "GeoPackage or database",
            zh=f"目标中已有项目数据（{', '.join(held[:3])}），请复制到空的 GeoPackage 或数据库",
        )


def _copy_table(
    source: Store, target: Store, read: Connection, conn: Connection, table: sa.Table
) -> int:
    """The rows of ``table``, keys included, from ``source`` into ``target``."""
    if not source.columns(table.name, read):
        return 0
    if not target.columns(table.name, conn):
        table.create(conn)
    rows = _typed(table, source.read_table(table, conn=read))
    target.insert_rows(conn, table, rows)
    return len(rows)


def _typed(table: sa.Table, frame: pd.DataFrame) -> pd.DataFrame:
    """The rows as the target's driver takes them (object columns): None for missing values,
    integers and flags as Python ints and bools (a nullable integer column reads back as
    floats, a flag as 0/1), bytes as bytes."""
    typed = pd.DataFrame(index=frame.index)
    for column in (c for c in table.columns if c.name in frame.columns):
        convert = _converter(column.type)
        values = frame[column.name].astype(object)
        typed[column.name] = pd.Series(
            [None if _missing(v) else convert(v) for v in values], index=frame.index, dtype=object
        )
    return typed


def _missing(value: Any) -> bool:
    return value is None or (not isinstance(value, str | bytes) and bool(pd.isna(value)))


def _converter(kind: sa.types.TypeEngine) -> Callable[[Any], Any]:
    if isinstance(kind, sa.Boolean):
        return bool
    if isinstance(kind, sa.Integer):
        return int
    if isinstance(kind, sa.LargeBinary):
        return bytes
    return lambda value: value.item() if hasattr(value, "item") else value
