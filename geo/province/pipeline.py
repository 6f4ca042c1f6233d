"""One street, start to finish, as a pure function: the unit of work a Dask worker runs.

A province is some 1,300 streets (街道) and each is independent: its buildings, communities,
cells, grids and codes (the street's 9-digit division code heads them) need nothing from another
street. :func:`process_street` reads one street's GeoParquet file, and runs the steps of
``gridmap import`` and ``gridmap partition`` on it (the same functions: reading, communities,
cells, community table, adjacency, partition, grid facts, codes, polygons) and returns frames;
it touches no store, so a worker on any machine can run it and the client writes the result.
Its peak memory is one street's, whatever the size of the province.

Examples
--------
>>> from geo.province.pipeline import StreetOptions, process_street  # doctest: +SKIP
>>> done = process_street("province/320505/320505100.parquet", StreetOptions())  # doctest: +SKIP
>>> done.grids[["grid_code", "n_buildings"]].head()  # doctest: +SKIP
"""

from __future__ import annotations

import re
import resource
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import pyproj

from geo.buildings.communities import assign_communities
from geo.buildings.reading import ReadOptions, read_buildings, read_lines
from geo.collect import fewer_collections
from geo.errors import InputError
from geo.grids import partition
from geo.grids.adjacency import building_adjacency, centroid_coordinates
from geo.grids.codes import validate_division_code
from geo.plans.store import GRID_COLUMNS, District, Inherited, coded_grids, grid_facts

# the import's own steps (cells, community table, warnings): a street is cut as `gridmap import`
# cuts a district
from geo.usecases.district import DistrictLayers, district_layers

#: the CRS of the synthetic province (CGCS2000 3-degree Gauss-Kruger, CM 120 E)
PROVINCE_CRS = "EPSG:4549"
ROADS_SUFFIX = ".roads"


@dataclass(frozen=True)
class StreetOptions:
    """How every street is read and partitioned (the same for all streets of a run)."""

    read: ReadOptions = field(
        default_factory=lambda: ReadOptions(
            id_field="building_id",
            community_field="community",
            households_field="households",
            working_crs=pyproj.CRS.from_user_input(PROVINCE_CRS),
        )
    )
    min_size: int = 4
    max_size: int = 5
    max_households: int | None = None
    seed: int = 0


@dataclass
class StreetResult:
    """A finished street: its layers as frames, ready for the store, and what it cost."""

    street_code: str
    buildings: gpd.GeoDataFrame  # the import's columns, ``community`` filled, ``grid_code``
    communities: gpd.GeoDataFrame  # community, number, n_buildings, households, outline
    cells: gpd.GeoDataFrame  # building_id, community, cell
    grids: gpd.GeoDataFrame  # GRID_COLUMNS, polygon
    roads: gpd.GeoDataFrame | None
    warnings: list[tuple[str, str]]
    seconds: float  # wall
    cpu_seconds: float  # this process's CPU time on the street (steadier on a shared machine)
    peak_mb: float  # the worker process's peak resident memory so far (see _peak_mb)


@dataclass(frozen=True)
class StreetSlice:
    """One street's rows of a single GDAL source that holds many (a province GeoPackage,
    FlatGeobuf, Shapefile ...): the rows whose ``field`` is ``code``. A worker reads only them
    (an attribute filter GDAL streams), so no process holds the whole source."""

    source: Path
    layer: str
    field: str
    code: str
    roads: Path | None = None  # the province's roads: each street reads those in its bounds

    @property
    def stem(self) -> str:
        """The street's code, as a street file's name gives it."""
        return self.code


Street = Path | StreetSlice
_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def street_files(
    folder: str | Path, *, street_field: str = "street_code", roads: Path | None = None
) -> list[Street]:
    """Every street of a province source: under a folder, the buildings file of each street
    (``<county>/<street>.parquet``); in a single GDAL file, one :class:`StreetSlice` per value
    of ``street_field`` (9-digit street codes, checked), with the province's ``roads`` file."""
    root = Path(folder)
    if root.is_file():
        return _slices(root, street_field, roads)
    found = sorted(root.rglob("*.parquet"))
    return [path for path in found if not path.stem.endswith(ROADS_SUFFIX)]


def streets_of(source: str | Path | Sequence[Street]) -> list[Street]:
    """The streets a run goes through: those under a folder, or the ones given; never none."""
    streets = street_files(source) if isinstance(source, str | Path) else list(source)
    if not streets:
        raise InputError(
            f"no street files (<county>/<street>.parquet) under {source}",
            zh=f"{source} 下没有街道文件（<县>/<街道>.parquet）",
        )
    return streets


def _slices(source: Path, field: str, roads: Path | None) -> list[Street]:
    """The streets of one file, from its distinct ``field`` values (one column is read)."""
    if not _FIELD.match(field):
        raise InputError(f"--street-field {field[:70]!r} is not a field name", zh="街道字段名无效")
    layer = str(pyogrio.list_layers(source)[0][0])
    if field not in pyogrio.read_info(source, layer=layer)["fields"]:
        raise InputError(
            f"{source.name} has no field {field!r} naming each building's street (9 digits)",
            zh=f"{source.name} 没有字段 {field}（各建筑所属街道的 9 位代码）",
        )
    values = pyogrio.read_dataframe(source, read_geometry=False, sql=_distinct(field, layer))[field]
    codes = sorted({str(value).strip() for value in values.dropna()})
    for code in codes:
        validate_division_code(code)  # data is never code: only digits reach a filter
    return [
        StreetSlice(source=source, layer=layer, field=field, code=code, roads=roads)
        for code in codes
    ]


def _distinct(field: str, layer: str) -> str:
    quoted_layer = '"' + layer.replace('"', '""') + '"'
    return f'SELECT DISTINCT "{field}" FROM {quoted_layer}'


def street_inputs(street: Street, folder: Path) -> tuple[Path, Path | None]:
    """The street's buildings and roads as files GDAL reads, made in ``folder`` where needed."""
    if isinstance(street, StreetSlice):
        where = f"\"{street.field}\" = '{street.code}'"  # both checked: a name, 9 digits
        frame = pyogrio.read_dataframe(street.source, layer=street.layer, where=where)
        copy = folder / f"{street.code}.fgb"
        pyogrio.write_dataframe(frame, copy, driver="FlatGeobuf")
        return copy, _roads_near(street.roads, frame, folder / f"{street.code}.roads.fgb")
    roads = roads_file(street)
    return gdal_readable(street, folder), None if roads is None else gdal_readable(roads, folder)


def _roads_near(roads: Path | None, buildings: gpd.GeoDataFrame, copy: Path) -> Path | None:
    """The roads of a province file that cross the street's bounds, as a file of their own."""
    if roads is None or buildings.empty:
        return None
    crs = pyogrio.read_info(roads)["crs"]
    box = buildings.to_crs(crs).total_bounds if crs and buildings.crs else buildings.total_bounds
    near = pyogrio.read_dataframe(roads, bbox=tuple(box))
    if near.empty:
        return None
    pyogrio.write_dataframe(near, copy, driver="FlatGeobuf")
    return copy


def roads_file(path: Path) -> Path | None:
    """The street's roads file beside its buildings file, when there is one."""
    roads = path.with_name(path.stem + ROADS_SUFFIX + path.suffix)
    return roads if roads.exists() else None


def process_street(
    path: str | Path | StreetSlice, options: StreetOptions | None = None
) -> StreetResult:
    """Import and partition one street's file; the street code is the file's name (9 digits).

    Returns the street's buildings (with ``grid_code``), communities, cells, roads and coded
    grids: exactly what ``gridmap import`` then ``gridmap partition`` store for that street
    alone with its division code set.
    """
    street = path if isinstance(path, StreetSlice) else Path(path)
    options = options or StreetOptions()
    code = validate_division_code(street.stem)
    started, cpu = time.perf_counter(), time.process_time()
    with fewer_collections():
        district, layers = _imported(street, code, options)
        labels, facts = _partitioned(district, layers.roads, options)
        by_building, grids = coded_grids(
            district,
            labels,
            facts,
            inherited=Inherited(),
            roster=pd.DataFrame(),
            names=pd.Series(dtype=object),
        )
        buildings = layers.buildings.copy()
        buildings["grid_code"] = by_building.reindex(district.buildings.index).to_numpy()
    return StreetResult(
        street_code=code,
        buildings=buildings,
        communities=layers.communities,
        cells=layers.cells,
        grids=_grid_layer(grids),
        roads=layers.roads,
        warnings=layers.warnings,
        seconds=time.perf_counter() - started,
        cpu_seconds=time.process_time() - cpu,
        peak_mb=_peak_mb(),
    )


def _peak_mb() -> float:
    """This process's own peak resident memory in MB: Linux's VmHWM, which starts afresh in a
    new program. ``ru_maxrss`` does not: it keeps the peak of the process that started this one
    across fork and exec, so a worker spawned by a large client would report the client's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def gdal_readable(path: Path, folder: Path) -> Path:
    """``path`` itself, or for GeoParquet a FlatGeobuf copy in ``folder``.

    The import reads through GDAL (:func:`~geo.buildings.reading.read_buildings`: its checks,
    id repair and field guessing), and GDAL's Parquet driver needs libduckdb, which pyogrio's
    wheels here lack; geopandas reads GeoParquet through pyarrow. One street is small (about
    2,000 buildings): the copy costs some 50 ms and keeps the import's own reading path.
    """
    if path.suffix.lower() != ".parquet":
        return path
    copy = folder / (path.stem + ".fgb")
    gpd.read_parquet(path).to_file(copy, driver="FlatGeobuf")
    return copy


def _imported(street: Street, code: str, options: StreetOptions) -> tuple[District, DistrictLayers]:
    """The import's steps on one street: read, communities, cells, community table."""
    with tempfile.TemporaryDirectory(prefix="gridmap-street-") as folder:
        source, roads_path = street_inputs(street, Path(folder))
        buildings, _report = read_buildings(source, options.read)
        roads = read_lines(roads_path, crs=buildings.crs) if roads_path else None
    found = assign_communities(buildings, roads=roads)
    buildings["community"] = found.community
    layers = district_layers(buildings, found, roads=roads, step=lambda *_: None)
    indexed = layers.buildings.set_index("building_id", drop=False)
    indexed.index.name = None
    numbers = layers.communities.set_index("community")["number"].astype(int)
    district = District(
        buildings=indexed,
        cells=gpd.GeoSeries(layers.cells.geometry.values, index=indexed.index, crs=indexed.crs),
        community_numbers={str(k): int(v) for k, v in numbers.items()},
        division_code=code,
        division_code_is_default=False,
    )
    return district, layers


def _partitioned(
    district: District, roads: gpd.GeoDataFrame | None, options: StreetOptions
) -> tuple[pd.Series, pd.DataFrame]:
    """The partition's steps on one street (``gridmap partition`` of a whole district)."""
    buildings = district.buildings
    centroids = centroid_coordinates(buildings)
    adjacency = building_adjacency(
        buildings, min_size=options.min_size, roads=roads, centroids=centroids
    )
    result = partition.partition_buildings(
        buildings,
        min_size=options.min_size,
        max_size=options.max_size,
        max_households=options.max_households,
        seed=options.seed,
        adjacency=adjacency,
    )
    labels = result.labels.astype(str)
    facts = grid_facts(
        district,
        labels,
        min_size=options.min_size,
        max_size=options.max_size,
        max_households=options.max_households,
        adjacency=adjacency,
        centroids=centroids,
    )
    return labels, facts


def _grid_layer(grids: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The coded grids as the ``grids`` layer holds them: GRID_COLUMNS and the polygon."""
    frame = grids.reset_index(drop=True)
    for column in GRID_COLUMNS:
        if column not in frame.columns:
            frame[column] = None
    frame["locked"] = frame["locked"].astype("boolean")
    frame["contiguous"] = frame["contiguous"].astype("boolean")
    frame["households"] = pd.array(frame["households"], dtype="Int64")
    return frame[[*GRID_COLUMNS, "geometry"]]
