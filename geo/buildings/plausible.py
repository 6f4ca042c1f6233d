"""Footprints that cannot be buildings, found before they reach the district.

Real files carry mistakes no reader raises on: a vertex typed as (0, 0), a feature at infinity,
a site's red line drawn around the whole estate, the same footprint twice. Each would quietly
change everything after it: one stray vertex stretches the district's box across half the globe,
so its metric CRS (chosen from the footprints' middle) and every cell and grid come out wrong.
The rules here are scale-free (relative to the file's own footprints), so they hold in degrees
and in metres alike.

Examples
--------
>>> import geopandas as gpd, shapely
>>> houses = [shapely.box(x, 0, x + 10, 10) for x in range(0, 200, 20)]
>>> frame = gpd.GeoDataFrame(geometry=[*houses, shapely.box(0, 0, 5e6, 10)], crs=4549)
>>> strays(frame.geometry.values).tolist()
[False, False, False, False, False, False, False, False, False, False, True]
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely

#: a footprint this many times wider than the file's typical one is no building (a stadium is
#: about 15 times a house; a vertex typed as (0, 0) makes one a million times wider)
WIDER = 1_000
#: a footprint this many times further from the district's middle than most footprints are
FURTHER = 100
#: fewer footprints than this are too few to say what is typical
TYPICAL_AFTER = 5


def non_finite(geometries: np.ndarray) -> np.ndarray:
    """Which geometries hold a coordinate that is not a finite number (NaN, Infinity)."""
    coordinates, owner = shapely.get_coordinates(geometries, return_index=True)
    bad = np.zeros(len(geometries), dtype=bool)
    bad[owner[~np.isfinite(coordinates).all(axis=1)]] = True
    return bad


def strays(geometries: np.ndarray) -> np.ndarray:
    """Which footprints are far too wide, or far too far from the others, to be buildings of
    the district (a stray vertex, a feature misplaced by a whole CRS)."""
    n = len(geometries)
    if n < TYPICAL_AFTER:
        return np.zeros(n, dtype=bool)
    bounds = shapely.bounds(geometries)
    width = np.hypot(bounds[:, 2] - bounds[:, 0], bounds[:, 3] - bounds[:, 1])
    centre = (bounds[:, :2] + bounds[:, 2:]) / 2
    middle = np.median(centre, axis=0)
    distance = np.hypot(*(centre - middle).T)
    typical_width = max(float(np.median(width)), 1e-12)
    typical_distance = max(float(np.quantile(distance, 0.9)), typical_width)
    return (width > WIDER * typical_width) | (distance > FURTHER * typical_distance)


def duplicates_and_containers(geometries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Footprints identical to an earlier one, and footprints that hold two or more others whole
    (a site's boundary rather than a building): each as a boolean mask."""
    normal = shapely.to_wkb(shapely.normalize(geometries))
    repeated = pd.Series(normal).duplicated().to_numpy()
    tree = shapely.STRtree(geometries)
    outer, inner = tree.query(geometries, predicate="contains_properly")
    keep = outer != inner
    held = np.bincount(outer[keep], minlength=len(geometries))
    return repeated, held >= 2


#: parts of one footprint further apart than this (m) are separate buildings, not wings
APART_M = 10.0


def scattered(geometries: np.ndarray) -> np.ndarray:
    """Which footprints (in metres) are made of parts more than :data:`APART_M` apart: a layer
    dissolved by community, say, rather than one building each."""
    result = np.zeros(len(geometries), dtype=bool)
    multi = np.flatnonzero(shapely.get_num_geometries(geometries) > 1)
    for position in multi:
        parts = shapely.get_parts(geometries[position])
        grown = shapely.get_parts(shapely.union_all(shapely.buffer(parts, APART_M / 2)))
        result[position] = len(grown) > 1
    return result
