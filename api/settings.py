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
    division: str | None = Field(
        None,
        description="the street (9-digit code) of a PostGIS database of many streets to serve "
        "alone; without it such a database's streets are served under /divisions/{code}/",
    )
    division_cache: int = Field(
        32,
        ge=1,
        description="streets whose caches (and database connections) stay open at once when "
        "serving /divisions/{code}/; the longest unused closes first",
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

    @field_validator("division", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("db", mode="before")
    @classmethod
    def _path_or_url(cls, value: Any) -> Any:
        # a URL stays text: as a Path, postgresql://host/db would lose a slash
        return os.fspath(value) if isinstance(value, os.PathLike) else value
