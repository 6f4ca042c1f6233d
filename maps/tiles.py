"""Tiles for an intranet: a local XYZ tile folder, an MBTiles file, or an intranet tile URL.

Street offices often have no internet but do have tiles: a folder ``{z}/{x}/{y}.png`` cut for
them, an ``.mbtiles`` file, or a tile server on the government network. ``--basemap tiles:SOURCE``
(or the project setting ``basemap_tiles``) names one. A URL template is used as it is; a folder
becomes a ``file://`` template for a map written to disk; ``gridmap serve`` serves a folder or an
MBTiles file itself under ``/maps/tiles/{z}/{x}/{y}`` (:func:`read_tile`), because a browser cannot
read SQLite.
"""

from __future__ import annotations

from pathlib import Path

from geo.exchange.mbtiles import mbtiles_tile

from .prepare import MapInputError

__all__ = ["SERVED_TEMPLATE", "is_url", "read_tile", "tile_template"]

#: Where ``gridmap serve`` serves the project's tiles (the page adds its token).
SERVED_TEMPLATE = "/maps/tiles/{z}/{x}/{y}"
_EXTENSIONS = ("png", "jpg", "jpeg", "webp")
_MEDIA = {b"\x89PNG": "image/png", b"\xff\xd8\xff": "image/jpeg", b"RIFF": "image/webp"}


def is_url(source: str) -> bool:
    """Whether ``source`` is a tile URL template rather than a path."""
    return source.startswith(("http://", "https://", "file://", "/maps/tiles/"))


def tile_template(source: str, *, served: bool = False) -> str:
    """The tile URL template for ``source`` (a URL template, a tile folder or an .mbtiles file).

    ``served``: the page comes from ``gridmap serve``, which serves folders and MBTiles files
    under :data:`SERVED_TEMPLATE`; else a folder becomes a ``file://`` template.

    Raises
    ------
    MapInputError
        A URL without ``{z}``, ``{x}`` and ``{y}``, a path that does not exist, or an MBTiles
        file for a map written to disk.
    """
    source = source.strip()
    if is_url(source):
        if not all(f"{{{k}}}" in source for k in "zxy"):
            raise MapInputError(
                f"the tile URL {source!r} needs {{z}}, {{x}} and {{y}}",
                hint="e.g. http://tiles.intranet/{z}/{x}/{y}.png",
            )
        return source
    path = Path(source).expanduser()
    if not path.exists():
        raise MapInputError(f"no tile folder or .mbtiles file at {source!r}")
    if served:
        return SERVED_TEMPLATE
    if path.suffix.lower() == ".mbtiles":
        raise MapInputError(
            f"{path.name} is an MBTiles file, which a browser cannot open from disk",
            hint="serve it with 'gridmap serve' (setting basemap_tiles) or give a tile folder",
        )
    return path.resolve().as_uri() + "/{z}/{x}/{y}." + _folder_extension(path)


def _folder_extension(folder: Path) -> str:
    for ext in _EXTENSIONS:
        if next(folder.glob(f"*/*/*.{ext}"), None) is not None:
            return ext
    raise MapInputError(
        f"the folder {folder} holds no {{z}}/{{x}}/{{y}}.png (or .jpg, .webp) tiles"
    )


def read_tile(source: str, z: int, x: int, y: int) -> tuple[bytes, str] | None:
    """One tile (bytes, media type) from a tile folder or an MBTiles file; None if it has none.

    MBTiles stores rows bottom-up (TMS): row ``2**z - 1 - y``.
    """
    path = Path(source).expanduser()
    if path.suffix.lower() == ".mbtiles":
        data = mbtiles_tile(path, z, x, y)
    else:
        found = next(
            (
                path / str(z) / str(x) / f"{y}.{e}"
                for e in _EXTENSIONS
                if (path / str(z) / str(x) / f"{y}.{e}").is_file()
            ),
            None,
        )
        data = found.read_bytes() if found else None
    if data is None:
        return None
    media = next((m for magic, m in _MEDIA.items() if data.startswith(magic)), "image/png")
    return data, media
