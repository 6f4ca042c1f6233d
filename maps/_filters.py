"""Selecting the rows of one community or one grid from every layer."""

from __future__ import annotations

import geopandas as gpd

from geo.errors import NotFound

__all__ = ["in_community", "in_grids"]


def in_community(frame: gpd.GeoDataFrame | None, community: str) -> gpd.GeoDataFrame | None:
    """Rows of ``frame`` whose ``community`` is ``community`` (``None`` stays ``None``)."""
    if frame is None or "community" not in frame.columns:
        return frame
    return frame[frame["community"].astype(str) == str(community)]


def in_grids(frame: gpd.GeoDataFrame | None, codes: set[str]) -> gpd.GeoDataFrame | None:
    """Rows of ``frame`` whose ``grid_code`` is one of ``codes``."""
    if frame is None or "grid_code" not in frame.columns:
        return frame
    return frame[frame["grid_code"].astype(str).isin(codes)]


def require_rows(frame: gpd.GeoDataFrame, what: str) -> gpd.GeoDataFrame:
    """``frame``, or :class:`NotFound` naming ``what`` if it is empty."""
    if frame.empty:
        raise NotFound(f"no {what}")
    return frame
