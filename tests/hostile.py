"""Hostile variants of the real files in ``../shared/data``, written for the input corpus.

Each helper takes a real file and writes a copy with one kind of damage a district office's data
really carries (a clipped OSM extract, a bow-tie, a GBK export), so the corpus tests in
``test_hostile_inputs.py`` read as a list of inputs and their documented outcomes.
"""

from __future__ import annotations

from pathlib import Path

import osmium

#: tags that make an area in the OSM test grid; they become ``building=yes``
AREA_KEYS = ("landuse", "natural")


def _retagged(obj) -> dict[str, str]:
    tags = {k: v for k, v in obj.tags if k not in AREA_KEYS}
    if any(k in AREA_KEYS for k, _ in obj.tags):
        tags["building"] = "yes"
    return tags


def osm_grid_as_buildings_pbf(
    source: Path, target: Path, *, clip_ways: tuple[int, ...] = ()
) -> None:
    """The OSM test grid with its areas retagged ``building=yes``, written as ``.osm.pbf``.

    ``clip_ways`` are closed ways cut as a bounding-box extract cuts them: all their nodes but
    the first are left out of the file, so GDAL hands the importer a ring of two points.
    The grid's areas span kilometres around (7E, 1N); they are shrunk 500 times and moved to
    Shanghai, to the size of buildings (and of their cells' tessellation).
    """
    ways = {o.id: list(o.nodes) for o in osmium.FileProcessor(str(source), osmium.osm.WAY)}
    dropped = {n.ref for way in clip_ways for n in ways[way][1:-1]}
    with osmium.SimpleWriter(str(target), overwrite=True) as writer:
        for obj in osmium.FileProcessor(str(source)):
            if obj.is_node():
                if obj.id not in dropped:
                    lon, lat = obj.location.lon, obj.location.lat
                    where = (121.4 + (lon - 7.0) / 500, 31.2 + (lat - 1.0) / 500)
                    writer.add_node(obj.replace(tags=_retagged(obj), location=where))
            elif obj.is_way():
                writer.add_way(obj.replace(tags=_retagged(obj)))
            else:
                writer.add_relation(obj.replace(tags=_retagged(obj)))


def write_buildings_pbf(path: Path, footprints) -> None:
    """Footprints (WGS84, with ``name``, ``addr_street``, ``addr_housenumber``) as OSM ways.

    The address goes into ``addr:*`` tags, where GDAL's OSM driver packs it into ``other_tags``.
    """
    with osmium.SimpleWriter(str(path), overwrite=True) as writer:
        node, ways = 0, []
        for row in footprints.itertuples():
            polygon = max(getattr(row.geometry, "geoms", [row.geometry]), key=lambda p: p.area)
            refs = []
            for lon, lat in polygon.exterior.coords[:-1]:
                node += 1
                refs.append(node)
                writer.add_node(osmium.osm.mutable.Node(id=node, location=(lon, lat)))
            tags = {
                "building": "yes",
                "name": str(row.name),
                "addr:street": str(row.addr_street),
                "addr:housenumber": str(row.addr_housenumber),
            }
            ways.append(osmium.osm.mutable.Way(id=len(ways) + 1, nodes=[*refs, refs[0]], tags=tags))
        for way in ways:
            writer.add_way(way)
