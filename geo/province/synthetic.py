"""A synthetic province slice to test province-scale runs on: never real people or places.

Each street (街道) is one :func:`geo.demo.demo_district` drawn with its own seed (gated compounds,
towers, villa rows and villages in six communities, about 2,000 buildings with awkward counts),
moved onto a grid of streets across the real counties of Suzhou (GB/T 2260 codes) and written
as one GeoParquet file per street: ``<folder>/<county>/<street>.parquet`` (the buildings, with
``county_code``, ``street_code`` and a province-wide ``building_id``) beside
``<street>.roads.parquet``. 508 streets make a million buildings; a reader can take one street
at a time, so no process ever holds the province.

Examples
--------
>>> import tempfile
>>> from geo.province.synthetic import write_province
>>> with tempfile.TemporaryDirectory() as folder:
...     written = write_province(folder, streets=2, seed=1)
...     print([path.stem for path in written.paths], written.buildings > 3_000)
['320505100', '320506100'] True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd

from geo.demo import demo_district

#: real county-level codes (GB/T 2260) of Suzhou, in the order streets are dealt to them
COUNTIES = ("320505", "320506", "320507", "320508", "320509", "320581", "320582", "320583")
#: streets are laid on a grid of these cells (metres); a demo street spans about 3.0 x 2.2 km
CELL = (3_500.0, 2_600.0)
COLUMNS = 24
#: the grid's south-west corner in EPSG:4549 (CGCS2000 3-degree Gauss-Kruger, CM 120 E)
ORIGIN = (480_000.0, 3_440_000.0)


@dataclass(frozen=True)
class ProvinceSlice:
    """What :func:`write_province` wrote: one buildings file per street, and the total."""

    paths: list[Path]
    buildings: int


def street_code(index: int) -> tuple[str, str]:
    """The county code and the 9-digit street code of the ``index``-th street (0-based)."""
    county = COUNTIES[index % len(COUNTIES)]
    return county, f"{county}{100 + index // len(COUNTIES):03d}"


def write_province(
    folder: str | Path,
    *,
    streets: int = 508,
    seed: int = 0,
    progress: Callable[[str, int, int], None] | None = None,
) -> ProvinceSlice:
    """Write ``streets`` synthetic streets as GeoParquet under ``folder``; see the module.

    ``progress`` is called as ``progress("generate", done, streets)`` after each street.
    """
    if streets < 1 or streets > len(COUNTIES) * 899:
        raise ValueError(f"streets must be 1..{len(COUNTIES) * 899}, not {streets}")
    root = Path(folder)
    paths, total = [], 0
    for index in range(streets):
        path, count = write_street(root, index, seed=seed)
        paths.append(path)
        total += count
        if progress is not None:
            progress("generate", index + 1, streets)
    return ProvinceSlice(paths=paths, buildings=total)


def write_street(root: Path, index: int, *, seed: int = 0) -> tuple[Path, int]:
    """Draw the ``index``-th street, move it to its place and write it; path and count."""
    county, street = street_code(index)
    district = demo_district(seed=seed * 100_003 + index, n_incidents=0)
    dx, dy = _offset(index, district.buildings.total_bounds)
    buildings = _placed(district.buildings, dx, dy)
    buildings.insert(0, "building_id", street + "-" + district.buildings["building_id"])
    buildings.insert(1, "county_code", county)
    buildings.insert(2, "street_code", street)
    folder = root / county
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{street}.parquet"
    buildings.to_parquet(path, index=False)
    _placed(district.roads, dx, dy).to_parquet(folder / f"{street}.roads.parquet", index=False)
    return path, len(buildings)


def _offset(index: int, bounds) -> tuple[float, float]:
    row, column = divmod(index, COLUMNS)
    return (
        ORIGIN[0] + column * CELL[0] - bounds[0],
        ORIGIN[1] + row * CELL[1] - bounds[1],
    )


def _placed(frame: gpd.GeoDataFrame, dx: float, dy: float) -> gpd.GeoDataFrame:
    moved = frame.drop(columns=["building_id"], errors="ignore").copy()
    moved.geometry = moved.geometry.translate(xoff=dx, yoff=dy)
    return moved
