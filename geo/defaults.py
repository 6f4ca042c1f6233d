"""Defaults the command line shows before it imports anything heavy.

``gridmap --help`` and every option's default must not wait for sqlalchemy, geopandas or numba
(issue #16: start-up under 0.3 s), so the few values a command signature needs live here, in a
module that imports nothing; :mod:`geo.storage.store` and :mod:`geo.grids.partition` take them from here.
"""

from __future__ import annotations

from pathlib import Path

#: the project file when neither ``--db`` nor ``GRIDMAP_DB`` names one
DEFAULT_PATH = Path("gridmap.gpkg")
#: how a ``--db`` naming a PostgreSQL + PostGIS database starts (anything else is a GeoPackage)
SERVER_SCHEMES = ("postgresql:", "postgresql+", "postgres:")


def is_server_url(db: object) -> bool:
    """Whether ``db`` names a PostGIS database rather than a GeoPackage file.

    >>> is_server_url("postgresql://gridmap@db/jiangsu"), is_server_url("district.gpkg")
    (True, False)
    """
    return str(db).startswith(SERVER_SCHEMES)


#: largest ``max_size`` accepted (the engine holds two grids' buildings in 62-bit masks)
MAX_GRID_SIZE = 30
