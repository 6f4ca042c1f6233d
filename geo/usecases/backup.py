"""A consistent copy of a GeoPackage project, even while the service writes to it.

``gridmap backup`` calls :func:`backup_project`; the SQLite backup API is used here so that
api/ holds no SQL or file format.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path


def backup_project(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` with SQLite's online backup API.

    A plain file copy misses the writes still in the write-ahead log (``-wal``) and may catch a
    page half-written; the backup API reads one consistent snapshot, WAL included, while other
    connections go on reading and writing.
    """
    with (
        closing(sqlite3.connect(source, timeout=30)) as src,
        closing(sqlite3.connect(target)) as dst,
    ):
        src.backup(dst)
