"""The plan-diff map: a new plan's grids with the changed ones highlighted over their old outlines."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import folium
import geopandas as gpd

from .base import MapOptions, build_map

__all__ = ["diff_map"]


def diff_map(
    grids_a: gpd.GeoDataFrame,
    grids_b: gpd.GeoDataFrame,
    changed_codes: Iterable[str],
    *,
    buildings: gpd.GeoDataFrame | None = None,
    communities: gpd.GeoDataFrame | None = None,
    **options: Any,
) -> folium.Map:
    """Plan ``grids_b`` with the grids in ``changed_codes`` in red, and their outlines in ``grids_a``.

    Parameters
    ----------
    grids_a, grids_b : GeoDataFrame
        The grids before and after (``grid_code``, ``community``, geometry).
    changed_codes : iterable of str
        Codes of grids that changed (added, removed, reshaped or reassigned).
    buildings, communities : GeoDataFrame, optional
        Context layers.
    **options
        As :func:`maps.district_map`.

    Examples
    --------
    >>> m = diff_map(old, new, ["320508001001-003"])  # doctest: +SKIP
    """
    changed = {str(code) for code in changed_codes}
    flags = grids_b["grid_code"].astype(str).isin(changed).tolist()
    before = grids_a[grids_a["grid_code"].astype(str).isin(changed)]
    return build_map(
        grids=grids_b,
        buildings=buildings,
        communities=communities,
        options=MapOptions(choropleth=None, **options),
        changed=flags,
        before=before,
    )
