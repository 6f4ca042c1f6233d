"""Settings of the HTTP service, from ``GRIDMAP_*`` environment variables (pydantic-settings).

Examples
--------
>>> Settings(db="district.gpkg", public_maps=True).public_maps
True
"""

from __future__ import annotations

import os
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """What ``gridmap serve`` reads from the environment (``GRIDMAP_DB``, ``GRIDMAP_PUBLIC_MAPS`` ...)."""

    model_config = SettingsConfigDict(env_prefix="GRIDMAP_", extra="ignore")

    db: str = Field(
        "gridmap.gpkg",
        description="the project: a GeoPackage file, or a PostGIS database (postgresql://...)",
    )
    public_maps: bool = Field(
        False, description="serve /maps/* without a token (read-only, never with contacts)"
    )
    max_body_bytes: int = Field(
        5_000_000, ge=1_000, description="largest request body (uploads, batches); above: 413"
    )
    max_batch: int = Field(
        10_000, ge=1, description="most points per POST /locate and cases per POST /incidents"
    )
    max_page: int = Field(10_000, ge=1, description="largest 'limit' of a list or OGC items page")
    default_page: int = Field(100, ge=1, description="'limit' when none is given")
    max_embedded_buildings: int = Field(
        100_000,
        ge=1,
        description="above this many buildings a served map loads the footprints in view from "
        "/ogc instead of embedding them all",
    )
    refresh_seconds: float = Field(
        0.0,
        ge=0,
        description="after the project file changed, wait at most this long before re-reading "
        "the published plan for locate and OGC (0: at once)",
    )

    @field_validator("db", mode="before")
    @classmethod
    def _path_or_url(cls, value: Any) -> Any:
        # a URL stays text: as a Path, postgresql://host/db would lose a slash
        return os.fspath(value) if isinstance(value, os.PathLike) else value
