"""One tile out of an MBTiles file (an SQLite database of tiles), read-only.

The service hands a browser the tiles of an intranet basemap kept as one ``.mbtiles`` file
(:func:`maps.tiles.read_tile`); the file format is read here so that maps/ holds no SQL.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

_TILE = "SELECT tile_data FROM tiles WHERE zoom_level=? AND tile_column=? AND tile_row=?"


def mbtiles_tile(path: Path, z: int, x: int, y: int) -> bytes | None:
    """The bytes of tile ``z/x/y`` (XYZ numbering) in the MBTiles file ``path``; None if absent.

    MBTiles stores rows bottom-up (TMS): row ``2**z - 1 - y``.
    """
    with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as db:
        row = db.execute(_TILE, (z, x, (1 << z) - 1 - y)).fetchone()
    return bytes(row[0]) if row else None
