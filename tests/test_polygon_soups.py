"""Property: any soup of polygons imports or is refused with an InputError, never a crash.

Random footprints near the Bund (boxes, bow-ties, collinear slivers, two-point and unclosed rings,
exact duplicates, optionally split between two communities and cut by straight roads) are written as raw GeoJSON, so the
rings reach GDAL exactly as drawn. Whatever imports has cells that form a valid coverage in every
community (issue #14).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import shapely
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from geo.errors import InputError
from geo.storage.store import open_store
from geo.usecases import district as project

LON, LAT = 121.485, 31.235
STEP = 0.00002  # about 2 m


def _ring(kind: str, x: int, y: int, w: int, h: int) -> list[list[float]]:
    def at(i: int, j: int) -> list[float]:
        return [LON + (x + i) * STEP, LAT + (y + j) * STEP]

    rings = {
        "box": [at(0, 0), at(w, 0), at(w, h), at(0, h), at(0, 0)],
        "bowtie": [at(0, 0), at(w, h), at(w, 0), at(0, h), at(0, 0)],
        "sliver": [at(0, 0), at(w, 0), at(2 * w, 0), at(0, 0)],
        "two points": [at(0, 0), at(w, h)],
        "unclosed": [at(0, 0), at(w, 0), at(w, h), at(0, h)],
    }
    return rings[kind]


footprint = st.tuples(
    st.sampled_from(["box", "box", "box", "bowtie", "sliver", "two points", "unclosed"]),
    st.integers(0, 200),
    st.integers(0, 200),
    st.integers(1, 12),
    st.integers(1, 12),
    st.sampled_from(["东", "西"]),
)


def _write(path: Path, soup: list[tuple], with_communities: bool) -> None:
    features = [
        {
            "type": "Feature",
            "properties": {"community": side} if with_communities else {},
            "geometry": {"type": "Polygon", "coordinates": [_ring(kind, x, y, w, h)]},
        }
        for kind, x, y, w, h, side in soup
    ]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))


def _write_roads(path: Path, roads: list[tuple[int, int, int, int]]) -> Path:
    """Straight major roads across the soup, through whatever buildings lie on them."""
    features = [
        {
            "type": "Feature",
            "properties": {"kind": "major_road"},
            "geometry": {
                "type": "LineString",
                "coordinates": [
                    [LON + x0 * STEP, LAT + y0 * STEP],
                    [LON + x1 * STEP, LAT + y1 * STEP],
                ],
            },
        }
        for x0, y0, x1, y1 in roads
    ]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    soup=st.lists(footprint, min_size=1, max_size=25).flatmap(
        lambda items: st.just(items + items[: len(items) // 4])  # some exact duplicates
    ),
    with_communities=st.booleans(),
    roads=st.lists(st.tuples(*[st.integers(-20, 220)] * 4), max_size=3),
)
def test_any_polygon_soup_imports_with_valid_coverages_or_is_refused_by_gridmap(
    soup, with_communities, roads
):
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "soup.geojson"
        _write(source, soup, with_communities)
        roads_path = _write_roads(Path(folder) / "roads.geojson", roads) if roads else None
        store = open_store(Path(folder) / "p.gpkg", create=True)
        try:
            project.import_buildings(
                store,
                source,
                options=project.ReadOptions(
                    community_field="community" if with_communities else None
                ),
                roads_path=roads_path,
            )
        except InputError as error:
            event(f"refused: {type(error).__name__}")
            assert store.count("buildings") == 0
            return
        finally:
            store.engine.dispose()
        cells = open_store(Path(folder) / "p.gpkg").read_layer("cells")
        event("imported")
        for name, members in cells.groupby("community"):
            assert shapely.coverage_is_valid(members.geometry.values), name
