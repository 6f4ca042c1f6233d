"""What GDAL opens for a file a district office brings, and how its text is encoded.

Two things GDAL cannot know by itself: a Shapefile that does not say its code page (no ``.cpg``,
or "OEM", "ANSI", "System" in it, as ArcGIS guides suggest) holds GBK text that GDAL reads as
Latin-1, garbling every Chinese name without an error; and a zip made by Windows' "Send to
compressed folder" keeps the Shapefile in a folder, where GDAL does not look.

Examples
--------
>>> from pathlib import Path
>>> gdal_source(Path("footprints.geojson"))
PosixPath('footprints.geojson')
"""

from __future__ import annotations

import zipfile
from glob import escape as glob_escape
from pathlib import Path

import pandas as pd
import pyogrio

from geo.chinese_text import decoded


def gdal_source(path: Path) -> str | Path:
    """What GDAL opens for ``path``: the path, or the one Shapefile inside a zip's folder (what
    Windows' "Send to compressed folder" makes, which GDAL does not look into by itself)."""
    if path.suffix.lower() == ".zip":
        member = _zipped_shapefile(path)
        if member is not None and "/" in member:
            return _vsizip(path, member)
    return path


def shapefile_encoding(path: Path) -> str | None:
    """The encoding of a Shapefile's text where GDAL would read it wrong; else None.

    A Shapefile says how its text is encoded in a ``.cpg`` file, or in its ``.dbf``'s language
    byte. Many made in Chinese offices say neither, or say "OEM", "ANSI" or "System" (what
    ArcGIS guides suggest): GDAL then reads GBK text as Latin-1, and every Chinese name comes out
    garbled without an error. Then the text is read as raw bytes and decoded as UTF-8, else as
    GB18030 (which GBK is part of) where that gives Chinese text.
    """
    sidecars = _shapefile_sidecars(path)
    if sidecars is None:
        return None
    declared = sidecars.get(".cpg")
    if declared is not None and declared.decode("ascii", "replace").strip().lower() in _TRUSTED:
        return None
    if declared is None and sidecars.get(".dbf", b"")[29:30] not in _NO_LDID:
        return None
    source = sidecars["source"].decode()
    raw = pyogrio.read_dataframe(
        source, read_geometry=False, encoding="ISO-8859-1", max_features=_ENCODING_SAMPLE
    )
    text = raw.select_dtypes(exclude=["number", "bool", "datetime"])
    values = (str(v) for column in text for v in pd.unique(text[column].dropna()))
    data = "".join([*map(str, raw.columns), *values]).encode("latin-1", errors="replace")
    return None if data.isascii() else _decoding(data)


def _decoding(data: bytes) -> str | None:
    """UTF-8 where ``data`` decodes as it; else GB18030 where that gives Chinese characters
    (Latin-1 text of another country can pass as GB18030 too)."""
    found = decoded(data)
    if found is None:
        return None
    text, encoding = found
    if encoding != "gb18030":
        return "UTF-8"
    return "GB18030" if any("\u4e00" <= ch <= "\u9fff" for ch in text) else None


#: features whose text decides a Shapefile's encoding (its first ones: reading is not free)
_ENCODING_SAMPLE = 50_000
#: a .dbf's language byte where it names no code page (0) or "Windows ANSI" (0x57)
_NO_LDID = (b"\x00", b"\x57")
#: .cpg contents GDAL reads Chinese text right by (UTF-8 and the Chinese code pages)
_TRUSTED = {"utf-8", "utf8", "65001", "gbk", "936", "cp936", "gb2312", "gb18030", "54936", "big5"}


def _shapefile_sidecars(path: Path) -> dict[str, bytes] | None:
    """For a Shapefile (``.shp``, or a ``.zip`` holding one, in a folder or not): the first bytes
    of its ``.dbf`` and ``.cpg`` where present, and ``source`` (what GDAL opens); None for any
    other file. A missing ``.dbf`` gives an empty dict (GDAL reports it)."""
    suffix = path.suffix.lower()
    if suffix == ".shp":
        found = {p.suffix.lower(): p for p in path.parent.glob(glob_escape(path.stem) + ".*")}
        if ".dbf" not in found:
            return {}
        sidecars = {k: found[k].read_bytes()[:64] for k in (".dbf", ".cpg") if k in found}
        return {**sidecars, "source": str(path).encode()}
    if suffix != ".zip":
        return None
    member = _zipped_shapefile(path)
    if member is None:
        return None
    with zipfile.ZipFile(path) as archive:
        stem, names = member[: -len(".shp")], set(archive.namelist())
        sidecars = {
            k: archive.read(stem + ext)[:64]
            for k in (".dbf", ".cpg")
            for ext in (k, k.upper())
            if stem + ext in names
        }
    return {**sidecars, "source": _vsizip(path, member).encode()}


def _zipped_shapefile(path: Path) -> str | None:
    """The one Shapefile a zip holds (its member name, in a folder or not); None otherwise."""
    try:
        with zipfile.ZipFile(path) as archive:
            shapes = [n for n in archive.namelist() if n.lower().endswith(".shp")]
    except (OSError, zipfile.BadZipFile):
        return None
    return shapes[0] if len(shapes) == 1 else None


def _vsizip(path: Path, member: str) -> str:
    """GDAL's name for a file inside a zip."""
    return f"/vsizip/{path.resolve()}/{member}"
